package cluster

import (
	"encoding/json"
	"errors"
	"sync/atomic"
	"time"

	"github.com/rostrum-dev/rostrum/internal/events"
)

// The channel that carries every node's accepted events to the other
// nodes' live streams (/v1/events on any node streams every node's
// events). Deliveries to sinks do not depend on it: they come from the
// outbox, which every node writes.
const eventsChannel = "rostrum_events"

type relayed struct {
	ID      string          `json:"id"`
	Account string          `json:"account"`
	Doc     json.RawMessage `json:"doc"`
}

// EventRelay carries live events between the nodes' buses.
type EventRelay struct {
	c       *Cluster
	bus     atomic.Pointer[events.Bus]
	q       chan *events.Live
	dropped atomic.Int64
}

// relayQueue bounds the events waiting to be sent to the other nodes; a
// burst beyond it is dropped from the other nodes' live streams (logged),
// never from the outbox.
const relayQueue = 4096

// NewEventRelay makes the relay; call it before Start, give Send to the
// bus (events.Config.Relay) and the bus to SetBus.
func NewEventRelay(c *Cluster) *EventRelay {
	r := &EventRelay{c: c, q: make(chan *events.Live, relayQueue)}
	c.Handle(eventsChannel, r.receive)
	c.wg.Add(1)
	go r.send()
	return r
}

// SetBus gives the relay this node's bus, which receives the other nodes'
// events.
func (r *EventRelay) SetBus(b *events.Bus) { r.bus.Store(b) }

// Send queues an event this node accepted for the other nodes; it never
// blocks.
func (r *EventRelay) Send(l *events.Live) {
	select {
	case r.q <- l:
	default:
		if r.dropped.Add(1)%100 == 1 {
			r.c.log.Warn("live events not relayed to the other nodes' streams: the relay is behind", "dropped", r.dropped.Load())
		}
	}
}

func (r *EventRelay) send() {
	defer r.c.wg.Done()
	for {
		var l *events.Live
		select {
		case <-r.c.ctx.Done():
			return
		case l = <-r.q:
		}
		b, err := json.Marshal(relayed{ID: l.ID, Account: l.Account, Doc: l.Doc})
		if err != nil {
			continue
		}
		for attempt := 0; ; attempt++ {
			err = r.c.Notify(r.c.ctx, eventsChannel, string(b))
			if err == nil || errors.Is(err, ErrTooLarge) || attempt == 2 || r.c.ctx.Err() != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil && r.c.ctx.Err() == nil {
			r.c.log.Warn("a live event was not relayed to the other nodes' streams", "event_id", l.ID, "err", err)
		}
	}
}

func (r *EventRelay) receive(from, body string) {
	var m relayed
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		r.c.log.Warn("an unreadable relayed event", "from", from, "err", err)
		return
	}
	if b := r.bus.Load(); b != nil {
		if err := b.Receive(m.ID, m.Doc, m.Account); err != nil {
			r.c.log.Warn("a relayed event", "from", from, "err", err)
		}
	}
}
