// Package report is how every `weft bench` subcommand presents its figures:
// one table on the terminal and the same rows as CSV and JSON in a results
// folder, with the machine they were measured on.
package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Machine describes where a benchmark ran.
type Machine struct {
	Hostname string `json:"hostname"`
	Kernel   string `json:"kernel"`
	CPUModel string `json:"cpu_model"`
	CPUs     int    `json:"cpus"`
	MemoryGB int    `json:"memory_gb"`
	GoVer    string `json:"go"`
}

// Report is one benchmark's result.
type Report struct {
	Name    string            `json:"name"` // overlay | up | gateway
	Started time.Time         `json:"started"`
	Machine Machine           `json:"machine"`
	Tool    string            `json:"tool,omitempty"` // the load generator used, e.g. "iperf3 3.12" or "built-in"
	Columns []string          `json:"columns"`
	Rows    [][]string        `json:"rows"`
	Notes   []string          `json:"notes,omitempty"` // warnings and conclusions, printed under the table
	Values  map[string]any    `json:"values,omitempty"`
	Files   map[string]string `json:"files,omitempty"` // extra artefacts (e.g. a plot) by kind
}

// ThisMachine reads the machine's description from /proc.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVer: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				if _, v, ok := strings.Cut(line, ":"); ok {
					m.CPUModel = strings.TrimSpace(v)
					break
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		if _, err := fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb); err == nil {
			m.MemoryGB = (kb + 512*1024) / (1024 * 1024)
		}
	}
	return m
}

// WriteTable prints the report as an aligned table followed by its notes.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "weft bench %s — %s, %d CPUs, %d GiB, kernel %s", r.Name, r.Machine.CPUModel, r.Machine.CPUs, r.Machine.MemoryGB, r.Machine.Kernel)
	if r.Tool != "" {
		fmt.Fprintf(w, ", load: %s", r.Tool)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(r.Columns, "\t"))
	for _, row := range r.Rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// Save writes <dir>/<name>-<timestamp>.csv and .json and returns their paths.
func (r *Report) Save(dir string) (csvPath, jsonPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("creating results folder %s: %w", dir, err)
	}
	stem := filepath.Join(dir, fmt.Sprintf("%s-%s", r.Name, r.Started.UTC().Format("20060102T150405Z")))
	csvPath, jsonPath = stem+".csv", stem+".json"
	f, err := os.Create(csvPath)
	if err != nil {
		return "", "", fmt.Errorf("writing %s: %w", csvPath, err)
	}
	cw := csv.NewWriter(f)
	_ = cw.Write(r.Columns)
	_ = cw.WriteAll(r.Rows)
	if err := f.Close(); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", csvPath, err)
	}
	if cw.Error() != nil {
		return "", "", fmt.Errorf("writing %s: %w", csvPath, cw.Error())
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", "", fmt.Errorf("encoding %s: %w", jsonPath, err)
	}
	if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
		return "", "", fmt.Errorf("writing %s: %w", jsonPath, err)
	}
	return csvPath, jsonPath, nil
}
