package ui

import "sync"

// hub hands the latest view to every open page. A page that falls behind
// misses intermediate views, never the latest: each view is whole.
type hub struct {
	mu   sync.Mutex
	subs map[*subscriber]struct{}
	last []byte
}

type subscriber struct {
	ch chan []byte // capacity 1: the latest view not yet sent
}

func newHub() *hub { return &hub{subs: map[*subscriber]struct{}{}} }

// subscribe returns a subscriber that first receives the current view (if
// there is one yet), and the function that ends the subscription.
func (h *hub) subscribe() (*subscriber, func()) {
	s := &subscriber{ch: make(chan []byte, 1)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	if h.last != nil {
		s.ch <- h.last
	}
	h.mu.Unlock()
	return s, func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
	}
}

// publish sends a view to every subscriber, replacing one it has not taken
// yet.
func (h *hub) publish(view []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.last = view
	for s := range h.subs {
		select {
		case <-s.ch:
		default:
		}
		s.ch <- view
	}
}

// current is the last published view, nil before the first.
func (h *hub) current() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

// count is the number of open subscriptions.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
