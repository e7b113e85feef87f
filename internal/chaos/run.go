package chaos

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"
)

// Rollback strategies (chaos run --rollback-strategy).
const (
	RollbackDefault  = "default"
	RollbackAlways   = "always"
	RollbackNever    = "never"
	RollbackDeviated = "deviated"
)

// Hypothesis strategies (chaos run --hypothesis-strategy).
const (
	HypoDefault      = "default"
	HypoBeforeOnly   = "before-method-only"
	HypoAfterOnly    = "after-method-only"
	HypoDuringMethod = "during-method"
	HypoContinuously = "continuously"
)

// RollbackStrategies and HypothesisStrategies list the accepted values.
var (
	RollbackStrategies   = []string{RollbackDefault, RollbackAlways, RollbackNever, RollbackDeviated}
	HypothesisStrategies = []string{HypoDefault, HypoBeforeOnly, HypoAfterOnly, HypoDuringMethod, HypoContinuously}
)

// Runner runs experiments.
type Runner struct {
	Providers           map[string]Provider // by provider type; http and process are added when missing
	Values              Values
	RollbackStrategy    string
	HypothesisStrategy  string
	HypothesisFrequency time.Duration // between runs of the hypothesis during the method (default 1s)
	FailFast            bool          // stop the method when the hypothesis deviates during it
	Out                 io.Writer     // progress lines; nil for none

	// AfterMethod runs between the method and the hypothesis after it
	// (weft waits there for its faults to end). Optional.
	AfterMethod func(ctx context.Context)
	// Cleanup runs last, also after Ctrl-C, with a context of its own (weft
	// ends every fault the run still has). Its reports go to the journal.
	Cleanup func(ctx context.Context) []map[string]any
}

func (r *Runner) logf(format string, args ...any) {
	if r.Out != nil {
		fmt.Fprintf(r.Out, "[%s] %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

func (r *Runner) provider(t string) (Provider, bool) {
	if p, ok := r.Providers[t]; ok {
		return p, true
	}
	switch t {
	case "http":
		return HTTPProvider{}, true
	case "process":
		return ProcessProvider{}, true
	}
	return nil, false
}

// Run runs e. Cancelling ctx (Ctrl-C) interrupts the method; rollbacks and
// Cleanup still run, with contexts of their own.
func (r *Runner) Run(ctx context.Context, e *Experiment) *Journal {
	started := time.Now()
	host, _ := os.Hostname()
	j := &Journal{
		ChaoslibVersion: Version,
		Platform:        runtime.GOOS + "-" + runtime.GOARCH,
		Node:            host,
		Experiment:      e.Raw,
		Start:           stamp(started),
		SteadyStates:    SteadyStates{During: []*State{}},
		Run:             []*Run{},
		Rollbacks:       []*Run{},
		Weft:            &WeftReport{Before: "not run", Method: "not run", After: "not run"},
	}
	strategy := r.HypothesisStrategy
	if strategy == "" {
		strategy = HypoDefault
	}
	r.logf("Running experiment: %s", e.Title)
	setStatus := func(s string) {
		j.mu.Lock()
		if j.Status == "" || s == StatusInterrupted || s == StatusAborted {
			j.Status = s
		}
		j.mu.Unlock()
	}

	beforeOK := true
	if e.Hypothesis != nil && strategy != HypoAfterOnly && strategy != HypoDuringMethod {
		r.logf("Steady-state strategy: %s", strategy)
		st := r.hypothesis(ctx, e)
		j.SteadyStates.Before = st
		if st.SteadyStateMet {
			j.Weft.Before = "met"
		} else {
			j.Weft.Before = "not met"
			beforeOK = false
			r.logf("Steady state probe is not in the given tolerance before the method: not running the method")
			setStatus(StatusFailed)
		}
	}

	if beforeOK && ctx.Err() == nil {
		methodCtx, stopMethod := context.WithCancel(ctx)
		var during sync.WaitGroup
		if e.Hypothesis != nil && (strategy == HypoDuringMethod || strategy == HypoContinuously) {
			during.Add(1)
			go func() {
				defer during.Done()
				r.continuous(methodCtx, e, j, stopMethod)
			}()
		}
		failed := r.activities(methodCtx, e.Method, &j.Run, &j.mu)
		stopMethod()
		during.Wait()
		switch {
		case ctx.Err() != nil:
			j.Weft.Method = "interrupted"
			setStatus(StatusInterrupted)
		case failed != "":
			j.Weft.Method = "failed: " + failed
			setStatus(StatusFailed)
		default:
			j.Weft.Method = "ok"
		}
		if ctx.Err() == nil && r.AfterMethod != nil {
			r.AfterMethod(ctx)
		}
		if ctx.Err() == nil && e.Hypothesis != nil && strategy != HypoBeforeOnly && strategy != HypoDuringMethod {
			st := r.hypothesis(ctx, e)
			j.SteadyStates.After = st
			if st.SteadyStateMet {
				j.Weft.After = "met"
			} else {
				j.Weft.After = "not met"
				j.mu.Lock()
				j.Deviated = true
				j.mu.Unlock()
				r.logf("Steady state probe is not in the given tolerance after the method: the experiment deviated")
			}
		}
		if ctx.Err() != nil {
			setStatus(StatusInterrupted)
		}
	}

	// Rollbacks run on normal end, on failure and on Ctrl-C, with a context
	// of their own.
	play := false
	switch r.RollbackStrategy {
	case RollbackAlways, RollbackDefault, "":
		play = true
	case RollbackDeviated:
		play = j.Deviated
	}
	rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	if play && len(e.Rollbacks) > 0 {
		r.logf("Let's rollback...")
		r.activities(rbCtx, e.Rollbacks, &j.Rollbacks, &j.mu)
	} else if len(e.Rollbacks) > 0 {
		r.logf("Rollbacks not played (strategy %s)", r.RollbackStrategy)
	}
	if r.Cleanup != nil {
		j.Weft.Faults = r.Cleanup(rbCtx)
	}
	setStatus(StatusCompleted)
	ended := time.Now()
	j.mu.Lock()
	j.End = stamp(ended)
	j.Duration = ended.Sub(started).Seconds()
	j.Weft.Verdict = verdictLine(e.Title, j.Weft, j.Status, j.Deviated)
	j.mu.Unlock()
	r.logf("Experiment ended with status: %s", j.Status)
	return j
}

// hypothesis runs every probe of the hypothesis, stopping at the first
// one out of tolerance, as chaostoolkit-lib does.
func (r *Runner) hypothesis(ctx context.Context, e *Experiment) *State {
	r.logf("Steady state hypothesis: %s", e.Hypothesis.Title)
	st := &State{SteadyStateMet: true, Probes: []*Run{}}
	for _, p := range e.Hypothesis.Probes {
		run := r.runActivity(ctx, p)
		st.Probes = append(st.Probes, run)
		met := false
		if run.Status == RunSucceeded {
			ok, err := WithinTolerance(ctx, r.Values.Substitute(p.Tolerance), run.Output, r.Values.Substitute, r.toleranceProbe)
			if err != nil {
				run.Exception = append(run.Exception, "tolerance: "+err.Error())
			}
			met = ok
		}
		run.ToleranceMet = &met
		if !met {
			st.SteadyStateMet = false
			r.logf("Probe %q is not in the given tolerance (output %s)", p.Name, short(run.Output))
			break
		}
	}
	if st.SteadyStateMet {
		r.logf("Steady state hypothesis is met!")
	}
	return st
}

// toleranceProbe runs a probe tolerance (its arguments carry the value).
func (r *Runner) toleranceProbe(ctx context.Context, t map[string]any) (any, error) {
	prov, _ := t["provider"].(map[string]any)
	typ, _ := prov["type"].(string)
	p, ok := r.provider(typ)
	if !ok {
		return nil, fmt.Errorf("provider type %q", typ)
	}
	return p.Run(ctx, r.Values.Substitute(prov).(map[string]any))
}

// continuous runs the hypothesis during the method every frequency.
func (r *Runner) continuous(ctx context.Context, e *Experiment, j *Journal, stop context.CancelFunc) {
	freq := r.HypothesisFrequency
	if freq <= 0 {
		freq = time.Second
	}
	t := time.NewTicker(freq)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := r.hypothesis(ctx, e)
		if ctx.Err() != nil {
			return
		}
		j.mu.Lock()
		j.SteadyStates.During = append(j.SteadyStates.During, st)
		if !st.SteadyStateMet {
			j.Deviated = true
		}
		j.mu.Unlock()
		if !st.SteadyStateMet && r.FailFast {
			r.logf("The steady state deviated during the method and --fail-fast is set: stopping the method")
			stop()
			return
		}
	}
}

// activities runs a list (method or rollbacks); background ones run
// concurrently and are waited for at the end. It returns the name of the
// first activity that failed, "" when none did.
func (r *Runner) activities(ctx context.Context, list []*Activity, runs *[]*Run, mu *sync.Mutex) string {
	var wg sync.WaitGroup
	var failedMu sync.Mutex
	failed := ""
	record := func(a *Activity, run *Run) {
		if run.Status == RunFailed {
			failedMu.Lock()
			if failed == "" {
				failed = a.Name
			}
			failedMu.Unlock()
		}
	}
	for _, a := range list {
		if ctx.Err() != nil {
			break
		}
		run := &Run{Activity: a.Raw, Start: stamp(time.Now())}
		mu.Lock()
		*runs = append(*runs, run)
		mu.Unlock()
		if a.Background {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r.runInto(ctx, a, run, mu)
				r.judge(ctx, a, run, mu)
				record(a, run)
			}()
			continue
		}
		r.runInto(ctx, a, run, mu)
		r.judge(ctx, a, run, mu)
		record(a, run)
	}
	wg.Wait()
	return failed
}

// judge applies a tolerance given to a method activity (a weft
// extension: chaostoolkit-lib ignores tolerances outside the hypothesis):
// out of tolerance makes the activity failed.
func (r *Runner) judge(ctx context.Context, a *Activity, run *Run, mu *sync.Mutex) {
	if !a.HasTolerance || run.Status != RunSucceeded {
		return
	}
	ok, err := WithinTolerance(ctx, r.Values.Substitute(a.Tolerance), run.Output, r.Values.Substitute, r.toleranceProbe)
	mu.Lock()
	defer mu.Unlock()
	run.ToleranceMet = &ok
	if !ok {
		run.Status = RunFailed
		msg := "output out of tolerance"
		if err != nil {
			msg += ": " + err.Error()
		}
		run.Exception = append(run.Exception, "chaoslib.exceptions.ActivityFailed: "+msg)
		r.logf("  => %s is out of tolerance (output %s)", a.Name, short(run.Output))
	}
}

func (r *Runner) runActivity(ctx context.Context, a *Activity) *Run {
	run := &Run{Activity: a.Raw, Start: stamp(time.Now())}
	var mu sync.Mutex
	r.runInto(ctx, a, run, &mu)
	return run
}

// runInto runs one activity with its pauses and fills run.
func (r *Runner) runInto(ctx context.Context, a *Activity, run *Run, mu *sync.Mutex) {
	if a.PauseBefore > 0 {
		r.logf("Pausing before activity for %gs...", a.PauseBefore)
		sleep(ctx, a.PauseBefore)
	}
	kind := "Action"
	if a.Type == TypeProbe {
		kind = "Probe"
	}
	r.logf("%s: %s", kind, a.Name)
	start := time.Now()
	var out any
	var err error
	if p, ok := r.provider(a.ProviderType()); !ok {
		err = fmt.Errorf("no provider of type %q", a.ProviderType())
	} else {
		prov, _ := r.Values.Substitute(a.Provider).(map[string]any)
		out, err = p.Run(ctx, prov)
	}
	end := time.Now()
	mu.Lock()
	run.Start = stamp(start)
	run.Output = out
	run.End = stamp(end)
	run.Duration = end.Sub(start).Seconds()
	if err != nil {
		run.Status = RunFailed
		run.Exception = []string{"chaoslib.exceptions.ActivityFailed: " + err.Error()}
	} else {
		run.Status = RunSucceeded
	}
	mu.Unlock()
	if err != nil {
		r.logf("  => failed: %v", err)
	}
	if a.PauseAfter > 0 {
		r.logf("Pausing after activity for %gs...", a.PauseAfter)
		sleep(ctx, a.PauseAfter)
	}
}

func sleep(ctx context.Context, seconds float64) {
	t := time.NewTimer(time.Duration(seconds * float64(time.Second)))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func short(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
