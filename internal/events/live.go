package events

import (
	"sync"
	"sync/atomic"
)

// The live feed: every event the bus accepts, as it is accepted, for the
// live stream (package stream serves it over HTTP as server-sent events).
// Nothing is stored for it: a subscriber that falls behind is cut off, and
// one that comes back with the last id it saw gets what it missed if the
// bus still remembers it (Config.StreamReplay events).

// Live is an accepted event as the live feed carries it.
type Live struct {
	ID      string
	Doc     []byte         // the EventBridge document
	View    map[string]any // Doc decoded, for patterns
	Account string
}

// Subscription is one subscriber of the live feed.
type Subscription struct {
	c      chan *Live
	match  func(*Live) bool
	lagged bool // closed because it fell behind
}

// Events delivers the subscription's events; it is closed when the
// subscriber fell behind or the bus closed.
func (s *Subscription) Events() <-chan *Live { return s.c }

// hub fans events out to subscriptions and remembers the latest ones.
type hub struct {
	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	ring    []*Live
	next    int // where the next event goes in ring
	closed  bool
	clients atomic.Int64
	lagged  atomic.Int64
}

func newHub(replay int) *hub {
	return &hub{subs: map[*Subscription]struct{}{}, ring: make([]*Live, replay)}
}

// subBuffer is how many events a subscriber may be behind before it is
// cut off, beyond what a replay puts in its channel.
const subBuffer = 256

func (h *hub) publish(e *Live) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.ring[h.next] = e
	h.next = (h.next + 1) % len(h.ring)
	for s := range h.subs {
		if !s.match(e) {
			continue
		}
		select {
		case s.c <- e:
		default:
			// Too slow: the subscriber is cut off; it comes back with the
			// last id it saw and the replay fills the gap, if it can.
			s.lagged = true
			close(s.c)
			delete(h.subs, s)
			h.lagged.Add(1)
		}
	}
}

// subscribe adds a subscriber. If lastID names an event the hub remembers,
// the matching events after it are queued first.
func (h *hub) subscribe(match func(*Live) bool, lastID string) (*Subscription, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, false
	}
	s := &Subscription{c: make(chan *Live, len(h.ring)+subBuffer), match: match}
	if lastID != "" {
		n := len(h.ring)
		found := false
		for i := range n {
			e := h.ring[(h.next+i)%n]
			if e == nil {
				continue
			}
			if found && match(e) {
				s.c <- e
			}
			if e.ID == lastID {
				found = true
			}
		}
	}
	h.subs[s] = struct{}{}
	h.clients.Add(1)
	return s, true
}

func (h *hub) unsubscribe(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clients.Add(-1)
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		close(s.c)
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for s := range h.subs {
		close(s.c)
		delete(h.subs, s)
	}
}

// Subscribe adds a subscriber to the live feed: the accepted events for
// which match is true, from now on, after those since lastID if the bus
// still remembers that event. It reports false once the bus is closed.
// Unsubscribe must follow.
func (b *Bus) Subscribe(match func(*Live) bool, lastID string) (*Subscription, bool) {
	return b.live.subscribe(match, lastID)
}

// Unsubscribe removes a subscriber.
func (b *Bus) Unsubscribe(s *Subscription) { b.live.unsubscribe(s) }
