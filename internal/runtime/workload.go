package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/weft-dev/weft/internal/model"
)

// workloadFile is where container-init records the workload it supervises.
const workloadFile = "workload.json"

// workloadState is container-init's account of the workload it runs and
// restarts, written on every transition to the container's state directory.
// It is the one source of the workload's pid, restart count and last exit:
// the runtime (in whichever agent is alive) reads it and turns changes into
// Events; without an agent, it is still kept up to date.
type workloadState struct {
	// State is model.StateRunning, StateBackoff (waiting to restart) or
	// StateExited (for good: container-init exits right after writing it).
	State     string    `json:"state"`
	Pid       int       `json:"pid"`        // running workload, as seen from the host; 0 when none
	StartTime uint64    `json:"start_time"` // of Pid, /proc/<pid>/stat field 22
	Started   time.Time `json:"started"`
	Restarts  int       `json:"restarts"` // restarts of the container so far, including earlier inits
	Exits     int       `json:"exits"`    // workload exits this init has seen; tells two exits apart
	LastPid   int       `json:"last_pid"` // workload that exited last; 0 when none yet
	LastExit  int       `json:"last_exit"`
}

func readWorkload(dir string) (workloadState, error) {
	var st workloadState
	b, err := os.ReadFile(filepath.Join(dir, workloadFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("decoding %s: %w", filepath.Join(dir, workloadFile), err)
	}
	return st, nil
}

func writeWorkload(dir string, st workloadState) error {
	return writeJSONAtomic(filepath.Join(dir, workloadFile), st)
}

func removeWorkload(dir string) error {
	if err := os.Remove(filepath.Join(dir, workloadFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", filepath.Join(dir, workloadFile), err)
	}
	return nil
}

// writeJSONAtomic replaces path with v encoded, through a rename, so a
// crash or a concurrent reader never sees half a file.
func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replacing %s: %w", path, err)
	}
	return nil
}

// writeJSONAtomicIn is writeJSONAtomic inside dir, an open directory (the
// init writes its record through it once the host's paths are hidden).
func writeJSONAtomicIn(dir *os.Root, name string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", name, err)
	}
	tmp := name + ".tmp"
	if err := dir.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := dir.Rename(tmp, name); err != nil {
		return fmt.Errorf("replacing %s: %w", name, err)
	}
	return nil
}

// workloadView is what a Supervise has reported of a container-init's
// workload state so far; update turns the next state into Events.
type workloadView struct {
	adopting bool // the first report is of a process an earlier agent started
	legacy   bool // the init is the workload itself (started by an older weft)
	read     bool // a state was read at least once
	pid      int  // workload last reported running
	exits    int  // exits already reported
	last     workloadState
}

// update reads the state and emits what changed: a Backoff for every
// workload exit not yet reported (only the latest when several happened
// unseen), then a Running for a workload pid not yet reported.
func (v *workloadView) update(dir string, emit func(Event)) {
	st, err := readWorkload(dir)
	if err != nil {
		return // not written yet (or being replaced): the next write wakes us
	}
	first := !v.read
	v.read, v.last = true, st
	if first && v.adopting {
		// Exits before this agent were reported by the one before it.
		v.exits = st.Exits
		if st.State == model.StateBackoff {
			emit(Event{State: model.StateBackoff, Pid: st.LastPid, ExitCode: st.LastExit, Restarts: st.Restarts, Adopted: true})
		}
	}
	if st.Exits > v.exits {
		v.exits = st.Exits
		if st.State != model.StateExited { // Supervise reports the final exit itself
			restarts := st.Restarts
			if st.State == model.StateRunning {
				restarts-- // the exited workload's count, before the restart
			}
			emit(Event{State: model.StateBackoff, Pid: st.LastPid, ExitCode: st.LastExit, Restarts: restarts})
		}
	}
	if st.State == model.StateRunning && st.Pid != v.pid {
		v.pid = st.Pid
		emit(Event{State: model.StateRunning, Pid: st.Pid, ExitCode: -1, Restarts: st.Restarts, Adopted: v.adopting})
		v.adopting = false
	}
	if st.State == model.StateBackoff {
		v.adopting = false
	}
}
