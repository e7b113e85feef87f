// Package api is the agent's HTTP API over its unix socket: the request and
// response types, and the client the CLI uses. The server side lives in the
// agent package.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/weft-dev/weft/internal/model"
	"github.com/weft-dev/weft/internal/spec"
)

// Paths of the API.
const (
	PathHealth = "/v1/health"
	PathApply  = "/v1/apply"
	PathStatus = "/v1/status"
	PathLogs   = "/v1/logs"
	PathSpec   = "/v1/spec"
	PathScale  = "/v1/scale"
	PathShift  = "/v1/shift"
	// PathRestart restarts one container; only its host's agent can.
	PathRestart = "/v1/restart"
)

// Health is an agent's answer to "are you there, and is your store usable".
type Health struct {
	Host     string `json:"host"`
	Manager  bool   `json:"manager"`
	StoreOK  bool   `json:"store_ok"`
	Phase    string `json:"phase"` // starting-etcd | connecting | ready
	Pid      int    `json:"pid"`
	RSSBytes int64  `json:"rss_bytes"`
}

// ApplyResult says what an apply will change.
type ApplyResult struct {
	SpecChanged bool          `json:"spec_changed"`
	Changes     model.Changes `json:"changes"`
	// Planned is where every container of the applied file goes (container
	// -> host): `up` waits until the cluster shows exactly this.
	Planned map[string]string `json:"planned"`
	// Weights says, for each route whose live weights differ from the
	// file's, whether they stay or the file's apply (shift.Reconcile).
	Weights []string `json:"weights,omitempty"`
}

// ScaleRequest is what `weft scale` sends: service -> replicas.
type ScaleRequest struct {
	Replicas map[string]int `json:"replicas"`
}

// RestartRequest is what `weft restart` and `weft ui` send to the agent of
// the container's host.
type RestartRequest struct {
	Container string `json:"container"`
}

// RestartResult says which container was restarted, and where.
type RestartResult struct {
	Container string `json:"container"`
	Host      string `json:"host"`
}

// ServiceChange is the last scale and the last rollout of one service.
type ServiceChange struct {
	Service string         `json:"service"`
	Scale   *model.Scale   `json:"scale,omitempty"`
	Rollout *RolloutStatus `json:"rollout,omitempty"`
}

// RolloutStatus is a rollout without the definitions it keeps.
type RolloutStatus struct {
	From     string    `json:"from,omitempty"`
	To       string    `json:"to"`
	State    string    `json:"state"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended,omitzero"`
	Updated  int       `json:"updated"`  // instances on To
	Replicas int       `json:"replicas"` // instances the file asks for
	Failed   []string  `json:"failed,omitempty"`
	Message  string    `json:"message,omitempty"`
}

// HostStatus is one host as the cluster sees it.
type HostStatus struct {
	Name        string `json:"name"`
	Subnet      string `json:"subnet"`
	Address     string `json:"address"`
	OverlayAddr string `json:"overlay_addr"`
	Netns       string `json:"netns"`
	Manager     bool   `json:"manager"`
	Agent       string `json:"agent"`       // up | down
	AgentPid    int    `json:"agent_pid"`   // as registered
	EtcdMember  string `json:"etcd_member"` // leader | follower | no-leader | down | unknown (agent has no store yet) | - (not a manager)
	Containers  int    `json:"containers"`
	// Firewall is the host's firewall as its own agent reads it; absent
	// when that agent did not answer.
	Firewall *FirewallStatus `json:"firewall,omitempty"`
}

// FirewallStatus is one host's firewall: on or off, and the packets each
// named counter dropped (firewall.CounterNames).
type FirewallStatus struct {
	On      bool              `json:"on"`
	Dropped map[string]uint64 `json:"dropped,omitempty"`
	Error   string            `json:"error,omitempty"` // why it could not be read
}

// Status is the whole cluster as the store and the agents see it.
type Status struct {
	Cluster    string                  `json:"cluster"`
	Applied    bool                    `json:"applied"` // a spec is in the store
	Hosts      []HostStatus            `json:"hosts"`
	Containers []model.ContainerStatus `json:"containers"` // one per assignment; State "pending" when its host has not reported yet
	Expected   int                     `json:"expected"`   // containers the applied spec asks for
	VIPs       []VIPStatus             `json:"vips,omitempty"`
	// Services that were scaled or whose definition changed: the last
	// change of each, and who made it.
	Changes []ServiceChange `json:"changes,omitempty"`

	// When the store cannot be read (quorum lost, the answering agent's host
	// cut off), status still answers from what the agents know: the freshest
	// agent's last mirrored copy of the store, with each answering agent's
	// own containers as it supervises them now.
	Stale        bool     `json:"stale,omitempty"`         // hosts and containers come from a copy, not from the store
	StaleSeconds float64  `json:"stale_seconds,omitempty"` // age of that copy (when it was last known current)
	Source       string   `json:"source,omitempty"`        // host whose agent gave this answer
	Unreachable  []string `json:"unreachable,omitempty"`   // what could not be reached, e.g. "host1: agent not answering", "store: no quorum"

	// Values in the store the agents refuse to act on, "key: why": they do
	// not decode, or a spec or assignment that does not validate.
	Refused []string `json:"refused,omitempty"`

	// Faults are the chaos faults in force (recorded in the store, not yet
	// removed), oldest first: [] when there is none, null when the store
	// could not be read.
	Faults []FaultStatus `json:"faults"`
}

// FaultStatus is one chaos fault in force.
type FaultStatus struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	Target    string    `json:"target,omitempty"`    // as the experiment named it
	Mechanism string    `json:"mechanism,omitempty"` // how it is done
	Created   time.Time `json:"created,omitzero"`
	Expires   time.Time `json:"expires"`
}

// Client talks to one agent over its unix socket.
type Client struct {
	Socket string
	http   *http.Client
}

// NewClient returns a client for the agent listening on socket.
func NewClient(socket string) *Client {
	return NewClientDial(socket, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	})
}

// NewClientDial returns a client for an agent reached through dial (one
// on another machine: through an ssh connection to its socket); socket
// names it in messages.
func NewClientDial(socket string, dial func(ctx context.Context) (net.Conn, error)) *Client {
	tr := &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		DisableKeepAlives: true,
	}
	return &Client{Socket: socket, http: &http.Client{Transport: tr}}
}

// ErrorBody is how the agent reports a failed request.
type ErrorBody struct {
	Error string `json:"error"`
}

// WriteJSON answers a request with v as JSON, for the servers that speak
// this API's way (the agent, weft ui).
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// WriteError answers a failed request with an ErrorBody.
func WriteError(w http.ResponseWriter, code int, err error) {
	WriteJSON(w, code, ErrorBody{Error: err.Error()})
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("calling agent at %s: %w", c.Socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		var eb ErrorBody
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			return errors.New(eb.Error)
		}
		return fmt.Errorf("agent at %s: %s: %s", c.Socket, resp.Status, bytes.TrimSpace(b))
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding agent answer: %w", err)
	}
	return nil
}

// Health asks the agent whether it is up and its store usable.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.do(ctx, http.MethodGet, PathHealth, nil, &h)
	return h, err
}

// Apply hands the agent a validated cluster file to store as desired state.
func (c *Client) Apply(ctx context.Context, cl *spec.Cluster) (ApplyResult, error) {
	var r ApplyResult
	err := c.do(ctx, http.MethodPost, PathApply, cl, &r)
	return r, err
}

// Scale changes services' replicas in the applied spec.
func (c *Client) Scale(ctx context.Context, replicas map[string]int) (ApplyResult, error) {
	var r ApplyResult
	err := c.do(ctx, http.MethodPost, PathScale, ScaleRequest{Replicas: replicas}, &r)
	return r, err
}

// Restart restarts a container of this agent's host: it returns once the
// old process has stopped; the agent starts the new one right after.
func (c *Client) Restart(ctx context.Context, container string) (RestartResult, error) {
	var r RestartResult
	err := c.do(ctx, http.MethodPost, PathRestart, RestartRequest{Container: container}, &r)
	return r, err
}

// Status returns the cluster's status.
// StartShift asks for a traffic shift (or, with DryRun, only its plan).
func (c *Client) StartShift(ctx context.Context, req ShiftRequest) (ShiftAnswer, error) {
	var out ShiftAnswer
	err := c.do(ctx, http.MethodPost, PathShift, req, &out)
	return out, err
}

// Shifts returns every route's last shift and the live weights.
func (c *Client) Shifts(ctx context.Context) (ShiftsAnswer, error) {
	var out ShiftsAnswer
	err := c.do(ctx, http.MethodGet, PathShift, nil, &out)
	return out, err
}

func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, PathStatus, nil, &s)
	return s, err
}

// Spec returns the applied cluster file, or nil before the first apply.
func (c *Client) Spec(ctx context.Context) (*spec.Cluster, error) {
	var out struct {
		Spec *spec.Cluster `json:"spec"`
	}
	err := c.do(ctx, http.MethodGet, PathSpec, nil, &out)
	return out.Spec, err
}

// Logs streams a container's output (it must run on this agent's host) to w.
func (c *Client) Logs(ctx context.Context, container string, follow bool, w io.Writer) error {
	q := url.Values{"container": {container}}
	if follow {
		q.Set("follow", "1")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent"+PathLogs+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("calling agent at %s: %w", c.Socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			return errors.New(eb.Error)
		}
		return fmt.Errorf("agent: %s", resp.Status)
	}
	_, err = io.Copy(w, resp.Body)
	if err != nil && (errors.Is(err, context.Canceled) || ctx.Err() != nil) {
		return nil
	}
	return err
}

// DefaultTimeout bounds a single API call from the CLI.
const DefaultTimeout = 10 * time.Second
