package store

import (
	"context"
	"fmt"
)

// MemberStatus is what one etcd member says about the cluster's leader.
type MemberStatus struct {
	HasLeader bool // the member knows a leader (not while an election runs or without quorum)
	IsLeader  bool // the member is that leader
}

// MemberStatus asks the member at endpoint (its client URL, ClientURL)
// directly, not any member the connection picks, within ctx's deadline or
// callTimeout. A member without a leader still answers (HasLeader false);
// an error means the member did not answer.
func (s *Store) MemberStatus(ctx context.Context, endpoint string) (MemberStatus, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
		defer cancel()
	}
	resp, err := s.client.Status(ctx, endpoint)
	if err != nil {
		return MemberStatus{}, fmt.Errorf("asking etcd member %s for its status: %w", endpoint, err)
	}
	return MemberStatus{
		HasLeader: resp.Leader != 0,
		IsLeader:  resp.Leader != 0 && resp.Leader == resp.Header.MemberId,
	}, nil
}
