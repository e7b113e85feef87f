package lab

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestAgentPidReadsTheFormatBeforeSupervisors(t *testing.T) {
	dir := t.TempDir()
	self := os.Getpid()
	st, err := readProcStat(self)
	if err != nil {
		t.Fatal(err)
	}
	// A weft before supervisors: a bare pid, the start time beside it.
	if err := os.WriteFile(filepath.Join(dir, agentPidFile), []byte(strconv.Itoa(self)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, legacyAgentStartFile), []byte(st.startTime+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pid, alive := agentPid(dir); pid != self || !alive {
		t.Fatalf("agentPid = %d, %v; want %d, true", pid, alive, self)
	}
	if err := os.WriteFile(filepath.Join(dir, legacyAgentStartFile), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, alive := agentPid(dir); alive {
		t.Error("a legacy record with another start time reads as alive")
	}
	if err := recordAgent(dir, self); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, legacyAgentStartFile)); !os.IsNotExist(err) {
		t.Errorf("legacy start-time file kept: %v", err)
	}
	if pid, alive := agentPid(dir); pid != self || !alive {
		t.Errorf("agentPid after recordAgent = %d, %v; want %d, true", pid, alive, self)
	}
}
