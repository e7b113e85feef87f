package db

import (
	"testing"
	"time"
)

// TestNewConfiguresPool checks the settings the services rely on; New does
// not connect, so no database is needed.
func TestNewConfiguresPool(t *testing.T) {
	const url = "postgres://shop:secret@127.0.0.1:1/products?sslmode=disable"
	p, err := New(url, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	config := p.pool.Config()
	if config.MaxConns != 3 {
		t.Errorf("MaxConns = %d, want 3", config.MaxConns)
	}
	if config.HealthCheckPeriod != healthCheckPeriod {
		t.Errorf("HealthCheckPeriod = %s, want %s", config.HealthCheckPeriod, healthCheckPeriod)
	}
	if config.ConnConfig.ConnectTimeout != connectTimeout {
		t.Errorf("ConnectTimeout = %s, want the default %s", config.ConnConfig.ConnectTimeout, connectTimeout)
	}

	own, err := New(url+"&connect_timeout=1", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(own.Close)
	if got := own.pool.Config().ConnConfig.ConnectTimeout; got != time.Second {
		t.Errorf("ConnectTimeout with connect_timeout=1 in the URL = %s, want 1s", got)
	}

	for _, c := range []struct {
		url      string
		maxConns int32
	}{{"", 10}, {url, 0}, {"postgres://%zz", 10}} {
		if p, err := New(c.url, c.maxConns); err == nil {
			p.Close()
			t.Errorf("New(%q, %d) succeeded, want an error", c.url, c.maxConns)
		}
	}
}
