package store

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/weft-dev/weft/internal/naming"
)

// Fault records (chaos): every injected fault is written here, with its
// expiry, before it is applied, so that agents can remove expired faults
// themselves even when the runner that applied them is gone.
//
//	faults/<id>  FaultRecord

// FaultRecord is one fault as the store keeps it. Body is the fault
// package's own record, opaque here.
type FaultRecord struct {
	ID      string          `json:"id"`
	Kind    string          `json:"kind"`
	Expires time.Time       `json:"expires"`
	Body    json.RawMessage `json:"body"`
}

func (s *Store) faultsPrefix() string      { return s.root + "faults/" }
func (s *Store) faultKey(id string) string { return s.faultsPrefix() + id }

// PutFault writes (or replaces) a fault record.
func (s *Store) PutFault(ctx context.Context, f FaultRecord) error {
	if f.ID == "" || strings.Contains(f.ID, "/") {
		return fmt.Errorf("writing fault: bad id %q", f.ID)
	}
	body, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encoding fault %s: %w", f.ID, err)
	}
	if _, err := s.client.Put(ctx, s.faultKey(f.ID), string(body)); err != nil {
		return fmt.Errorf("writing fault %s: %w", f.ID, err)
	}
	return nil
}

// Faults returns every fault record with the revision it was last written
// at (for DeleteFault).
func (s *Store) Faults(ctx context.Context) (map[string]FaultRecord, map[string]int64, error) {
	return s.faults(ctx)
}

// LocalFaults is Faults read serializably: the member the client talks to
// answers from its own copy, even without a leader. Agents sweep expired
// faults with it every second; a record it shows late or after its deletion
// costs one idempotent removal, and deletions are guarded by revision.
func (s *Store) LocalFaults(ctx context.Context) (map[string]FaultRecord, map[string]int64, error) {
	return s.faults(ctx, clientv3.WithSerializable())
}

func (s *Store) faults(ctx context.Context, opts ...clientv3.OpOption) (map[string]FaultRecord, map[string]int64, error) {
	resp, err := s.client.Get(ctx, s.faultsPrefix(), append([]clientv3.OpOption{clientv3.WithPrefix()}, opts...)...)
	if err != nil {
		return nil, nil, fmt.Errorf("reading faults: %w", err)
	}
	recs := decodeAll[FaultRecord](resp.Kvs, s.faultsPrefix(), nil)
	revs := make(map[string]int64, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		revs[strings.TrimPrefix(string(kv.Key), s.faultsPrefix())] = kv.ModRevision
	}
	return recs, revs, nil
}

// DeleteFault deletes a fault record; with rev > 0 only when it was not
// rewritten since that revision (a runner that just extended it wins).
func (s *Store) DeleteFault(ctx context.Context, id string, rev int64) error {
	key := s.faultKey(id)
	var err error
	if rev > 0 {
		_, err = s.client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(clientv3.OpDelete(key)).Commit()
	} else {
		_, err = s.client.Delete(ctx, key)
	}
	if err != nil {
		return fmt.Errorf("deleting fault %s: %w", id, err)
	}
	return nil
}

// ConnectVia is Connect with every connection made by dial: a client in the
// root namespace passes a dialer that opens its sockets inside a lab
// namespace, so it never dials a lab address from outside the lab.
func ConnectVia(ctx context.Context, dial func(ctx context.Context, addr string) (net.Conn, error), endpoints []string, creds *tls.Config, cluster string) (*Store, error) {
	if err := checkEndpoints(endpoints, creds, cluster); err != nil {
		return nil, err
	}
	client, err := clientv3.New(memberConfig(ctx, endpoints, creds, dial))
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd at %s: %w", strings.Join(endpoints, ", "), err)
	}
	if err := anyEndpointAnswers(ctx, client, endpoints); err != nil {
		client.Close()
		return nil, err
	}
	return &Store{client: client, root: naming.StoreRoot(cluster), statusWritten: map[string]writtenStatus{}}, nil
}
