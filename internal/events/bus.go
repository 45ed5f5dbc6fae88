package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store"
)

// Sink delivers events somewhere: a webhook, an EventBridge bus.
type Sink interface {
	// Name identifies the sink's queue in the outbox. It must stay the
	// same across restarts so that undelivered events find their sink
	// again. A sink that implements fmt.Stringer names itself in logs and
	// metrics with String, which must hold no secret (a webhook shows its
	// scheme and host only: paths and queries often carry tokens); else
	// Name is shown.
	Name() string
	// BatchSize is the most events one Deliver call takes.
	BatchSize() int
	// Deliver delivers a batch and returns one error per event, nil for
	// each delivered. It may be called for several batches at once, and
	// must return soon after ctx ends.
	Deliver(ctx context.Context, batch []Delivery) []error
}

// Delivery is one event on its way to a sink.
type Delivery struct {
	ID      string // the event id
	Doc     []byte // the EventBridge document, as it was accepted
	Attempt int    // 1 on the first attempt
}

// Retry says how a sink's failed deliveries are retried: after about
// Initial, doubling each time up to Max, with jitter, until the event has
// waited For (then it is dropped, logged and counted).
type Retry struct {
	Initial time.Duration
	Max     time.Duration
	For     time.Duration // 0: for ever
}

// DefaultRetry retries for a day, as EventBridge retries its targets.
var DefaultRetry = Retry{Initial: time.Second, Max: 5 * time.Minute, For: 24 * time.Hour}

// SinkConfig is a sink and the pattern that selects its events (nil: IVS's
// detail-types, as SinkPattern("")).
type SinkConfig struct {
	Sink    Sink
	Pattern *Pattern
}

// Config configures a Bus.
type Config struct {
	Store store.Store
	Sinks []SinkConfig
	// QueueMax bounds the undelivered events kept per sink: beyond it, the
	// bus drops new events for that sink (and says so in logs and
	// metrics). 0: unbounded.
	QueueMax int
	Retry    Retry
	// Parallel is how many batches one sink delivers at once (each of a
	// different stage); default 4.
	Parallel int
	// StreamReplay is how many recent events the live stream keeps for
	// clients that reconnect with Last-Event-ID; default 1024.
	StreamReplay int
	Logger       *slog.Logger

	// Several nodes sharing one outbox (nodes on one PostgreSQL). Claim,
	// when set, makes a sink's events delivered by one node at a time:
	// the node delivers only while it holds the sink's claim (held ends
	// when the claim is lost). Relay, when set, is given every event this
	// node accepts, for the other nodes' live streams, which get it
	// through Receive. ClaimPoll is how often a node without the claim
	// tries for it, and the longest a claimant sleeps without looking at
	// the outbox (other nodes' events arrive there); default 1 s.
	Claim     func(ctx context.Context, sink string) (held context.Context, release func(), ok bool, err error)
	Relay     func(*Live)
	ClaimPoll time.Duration
}

// Bus is the server's one event bus.
type Bus struct {
	cfg   Config
	store store.Store
	log   *slog.Logger
	sinks []*route
	live  *hub

	published sync.Map // detail-type → *atomic.Int64

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	started  atomic.Bool
	stopOnce sync.Once
}

// route is one sink's side of the bus: its pattern, queue depth, wake-up
// channel and counters.
type route struct {
	sink    Sink
	name    string // the outbox's key
	display string // for logs and metrics
	pattern *Pattern
	wake    chan struct{}

	depth          atomic.Int64 // entries in the outbox, including reserved ones
	enqueued       atomic.Int64
	delivered      atomic.Int64
	failures       atomic.Int64
	droppedFull    atomic.Int64
	droppedExpired atomic.Int64
}

func (r *route) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// NewBus returns a bus; Start starts its deliveries.
func NewBus(cfg Config) (*Bus, error) {
	if cfg.Store == nil {
		return nil, errors.New("events: a Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.StreamReplay <= 0 {
		cfg.StreamReplay = 1024
	}
	if cfg.ClaimPoll <= 0 {
		cfg.ClaimPoll = time.Second
	}
	if cfg.Retry.Initial <= 0 {
		cfg.Retry.Initial = DefaultRetry.Initial
	}
	if cfg.Retry.Max < cfg.Retry.Initial {
		cfg.Retry.Max = max(cfg.Retry.Initial, DefaultRetry.Max)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Bus{cfg: cfg, store: cfg.Store, log: cfg.Logger, live: newHub(cfg.StreamReplay), ctx: ctx, cancel: cancel}
	seen, shown := map[string]bool{}, map[string]bool{}
	for _, sc := range cfg.Sinks {
		if sc.Sink == nil {
			cancel()
			return nil, errors.New("events: nil sink")
		}
		name := sc.Sink.Name()
		if seen[name] {
			cancel()
			return nil, fmt.Errorf("events: sink %q configured twice", name)
		}
		seen[name] = true
		p := sc.Pattern
		if p == nil {
			p, _ = SinkPattern("")
		}
		display := name
		if s, ok := sc.Sink.(fmt.Stringer); ok {
			display = s.String()
		}
		// Logs and metrics tell sinks apart by display name: two webhooks
		// on one host (their paths are not shown, they may hold secrets)
		// get their position in the configuration added.
		if shown[display] {
			display = fmt.Sprintf("%s #%d", display, len(b.sinks)+1)
		}
		shown[display] = true
		b.sinks = append(b.sinks, &route{sink: sc.Sink, name: name, display: display, pattern: p, wake: make(chan struct{}, 1)})
	}
	return b, nil
}

// Start reads how many events wait for each sink and starts delivering
// them. Events waiting for a sink that is no longer configured stay in the
// outbox (a warning says how many) until it is configured again.
func (b *Bus) Start(ctx context.Context) error {
	if !b.started.CompareAndSwap(false, true) {
		return errors.New("events: bus already started")
	}
	counts, err := b.store.CountEvents(ctx)
	if err != nil {
		return fmt.Errorf("events: read the outbox: %w", err)
	}
	known := map[string]bool{}
	for _, r := range b.sinks {
		known[r.name] = true
		r.depth.Add(int64(counts[r.name]))
		if n := counts[r.name]; n > 0 {
			b.log.Info("delivering events accepted before the restart", "sink", r.display, "events", n)
		}
	}
	for name, n := range counts {
		if !known[name] && n > 0 {
			b.log.Warn("undelivered events wait for a sink that is not configured; they are kept until it is",
				"sink", redactURLs(name), "events", n)
		}
	}
	for _, r := range b.sinks {
		b.wg.Add(1)
		go b.run(r)
	}
	return nil
}

// Close stops deliveries (an attempt in flight is abandoned and made again
// after the next start) and ends live streams. Events prepared or published
// after Close are still written to the outbox, for the next start.
func (b *Bus) Close() {
	b.stopOnce.Do(func() {
		b.cancel()
		b.live.close()
		b.wg.Wait()
		for _, r := range b.sinks {
			if c, ok := r.sink.(interface{ CloseIdleConnections() }); ok {
				c.CloseIdleConnections()
			}
		}
	})
}

// Prepared is an event on its way into the outbox: its entries are written
// with the fact the event reports, in one transaction, then Done is called.
// A nil *Prepared has no entries and Done does nothing.
type Prepared struct {
	bus     *Bus
	ev      *Event
	doc     []byte
	view    map[string]any
	routes  []*route
	entries []*store.OutboxEntry
}

// Prepare makes an event's outbox entries: one for each sink whose pattern
// matches and whose queue has room. A full queue drops the event for that
// sink, which is logged and counted. Prepare never blocks.
func (b *Bus) Prepare(ev *Event) *Prepared {
	doc := ev.Marshal()
	view, err := decodeDoc(doc)
	if err != nil {
		panic(err) // Marshal made it
	}
	now := time.Now().UTC()
	p := &Prepared{bus: b, ev: ev, doc: doc, view: view}
	for _, r := range b.sinks {
		if !r.pattern.Match(view) {
			continue
		}
		if n := r.depth.Add(1); b.cfg.QueueMax > 0 && n > int64(b.cfg.QueueMax) {
			r.depth.Add(-1)
			r.droppedFull.Add(1)
			b.log.Warn("event dropped: the sink's queue is full", "sink", r.display, "queue_max", b.cfg.QueueMax,
				"event_id", ev.ID, "detail_type", ev.DetailType, "event_name", eventName(view), "stage", ev.Stage)
			continue
		}
		p.routes = append(p.routes, r)
		p.entries = append(p.entries, &store.OutboxEntry{
			Sink: r.name, Partition: ev.Stage, EventID: ev.ID, Doc: doc, NextAttempt: now, CreatedAt: now,
		})
	}
	return p
}

// Entries are the outbox entries to write.
func (p *Prepared) Entries() []*store.OutboxEntry {
	if p == nil {
		return nil
	}
	return p.entries
}

// Done is told whether the entries were written: if they were, the sinks
// wake up and live streams get the event; if not, it is forgotten.
func (p *Prepared) Done(err error) {
	if p == nil {
		return
	}
	b := p.bus
	if err != nil {
		for _, r := range p.routes {
			r.depth.Add(-1)
		}
		return
	}
	for _, r := range p.routes {
		r.enqueued.Add(1)
		r.poke()
	}
	c, _ := b.published.LoadOrStore(p.ev.DetailType, new(atomic.Int64))
	c.(*atomic.Int64).Add(1)
	l := &Live{ID: p.ev.ID, Doc: p.doc, View: p.view, Account: p.ev.Account}
	b.live.publish(l)
	if b.cfg.Relay != nil {
		b.cfg.Relay(l)
	}
	b.log.Debug("event published", "event_id", p.ev.ID, "detail_type", p.ev.DetailType,
		"event_name", eventName(p.view), "stage", p.ev.Stage, "sinks", len(p.routes))
}

// Publish accepts an event that no other write records (compositions,
// recordings): its outbox entries are written in a transaction of their
// own. Once it returns nil, the event will be delivered.
func (b *Bus) Publish(ctx context.Context, ev *Event) error {
	p := b.Prepare(ev)
	var err error
	if len(p.entries) > 0 {
		err = b.store.EnqueueEvents(ctx, p.entries...)
	}
	p.Done(err)
	return err
}

// redactURLs shows a sink's outbox name (for a webhook, its whole URL)
// with each URL cut to its scheme and host: paths and queries often carry
// the receiver's secret.
func redactURLs(name string) string {
	words := strings.Fields(name)
	for i, w := range words {
		if u, err := url.Parse(w); err == nil && u.Scheme != "" && u.Host != "" {
			words[i] = u.Scheme + "://" + u.Host
		}
	}
	return strings.Join(words, " ")
}

func eventName(view map[string]any) string {
	d, _ := view["detail"].(map[string]any)
	s, _ := d["event_name"].(string)
	return s
}

// Receive takes an event another node accepted (Config.Relay there): the
// live streams get it, and the sinks look at the outbox, where it waits.
func (b *Bus) Receive(id string, doc []byte, account string) error {
	view, err := decodeDoc(doc)
	if err != nil {
		return fmt.Errorf("events: a relayed event does not decode: %w", err)
	}
	b.live.publish(&Live{ID: id, Doc: doc, View: view, Account: account})
	for _, r := range b.sinks {
		r.poke()
	}
	return nil
}

// run delivers one sink's events until the bus closes; with Config.Claim,
// only while this node holds the sink's claim.
func (b *Bus) run(r *route) {
	defer b.wg.Done()
	if b.cfg.Claim == nil {
		b.deliverLoop(b.ctx, r, 0)
		return
	}
	for b.ctx.Err() == nil {
		held, release, ok, err := b.cfg.Claim(b.ctx, r.name)
		if err != nil && b.ctx.Err() == nil {
			b.log.Error("claiming a sink's deliveries", "sink", r.display, "err", err)
		}
		if err != nil || !ok {
			// Another node delivers this sink. This node's count of what
			// waits is kept true from the outbox (its own deliveries do
			// not lower it).
			b.refreshDepth(r)
			t := time.NewTimer(b.cfg.ClaimPoll)
			select {
			case <-b.ctx.Done():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		b.log.Info("this node delivers the sink's events", "sink", r.display)
		b.refreshDepth(r)
		b.deliverLoop(held, r, b.cfg.ClaimPoll)
		release()
	}
}

func (b *Bus) refreshDepth(r *route) {
	counts, err := b.store.CountEvents(b.ctx)
	if err == nil {
		r.depth.Store(int64(counts[r.name]))
	}
}

// deliverLoop delivers one sink's events until ctx ends: each round takes
// the oldest undelivered event of each stage (so a stage's events go out in
// order and a stage whose event is being retried holds back no other),
// delivers them in batches, deletes what was delivered and defers what
// failed. maxIdle > 0 bounds a sleep (other nodes write to the outbox).
func (b *Bus) deliverLoop(ctx context.Context, r *route, maxIdle time.Duration) {
	limit := r.sink.BatchSize() * b.cfg.Parallel
	for ctx.Err() == nil {
		ready, next, err := b.store.PendingEvents(ctx, r.name, time.Now(), limit)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.log.Error("reading the event outbox", "sink", r.display, "err", err)
			b.sleep(ctx, r, time.Now().Add(time.Second))
			continue
		}
		if len(ready) == 0 {
			if maxIdle > 0 && (next.IsZero() || time.Until(next) > maxIdle) {
				next = time.Now().Add(maxIdle)
			}
			b.sleep(ctx, r, next)
			continue
		}
		b.deliver(r, ready)
	}
}

// sleep waits until the given time (zero: indefinitely), a new event for
// the sink, or ctx ending.
func (b *Bus) sleep(ctx context.Context, r *route, until time.Time) {
	var timer <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
	case <-r.wake:
	case <-timer:
	}
}

// maxErrorText bounds the LastError kept with an entry.
const maxErrorText = 500

func (b *Bus) deliver(r *route, ready []*store.OutboxEntry) {
	results := make([]error, len(ready))
	size := max(1, r.sink.BatchSize())
	var wg sync.WaitGroup
	for start := 0; start < len(ready); start += size {
		end := min(start+size, len(ready))
		wg.Go(func() {
			batch := make([]Delivery, 0, end-start)
			for _, e := range ready[start:end] {
				batch = append(batch, Delivery{ID: e.EventID, Doc: e.Doc, Attempt: e.Attempts + 1})
			}
			errs := r.sink.Deliver(b.ctx, batch)
			for i := range batch {
				if i < len(errs) {
					results[start+i] = errs[i]
				} else {
					results[start+i] = errors.New("the sink gave no result for this event")
				}
			}
		})
	}
	wg.Wait()

	// The outbox is updated even while closing: what was delivered must
	// not be delivered again after a restart.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	closing := b.ctx.Err() != nil
	now := time.Now()
	var done []int64
	delivered, expired := 0, 0
	for i, e := range ready {
		err := results[i]
		if err == nil {
			done = append(done, e.Seq)
			delivered++
			continue
		}
		if closing {
			continue // abandoned, not failed: tried again after the restart
		}
		r.failures.Add(1)
		if b.cfg.Retry.For > 0 && now.Sub(e.CreatedAt) >= b.cfg.Retry.For {
			done = append(done, e.Seq)
			expired++
			b.log.Error("event dropped: not delivered within the retry window", "sink", r.display,
				"event_id", e.EventID, "stage", e.Partition, "attempts", e.Attempts+1, "retry_for", b.cfg.Retry.For, "err", err)
			continue
		}
		delay := b.backoff(e.Attempts + 1)
		msg := err.Error()
		if len(msg) > maxErrorText {
			msg = msg[:maxErrorText]
		}
		b.log.Warn("event delivery failed; will retry", "sink", r.display, "event_id", e.EventID,
			"stage", e.Partition, "attempt", e.Attempts+1, "retry_in", delay.Round(time.Millisecond), "err", err)
		if err := b.store.DeferEvent(ctx, r.name, e.Seq, now.Add(delay), msg); err != nil {
			b.log.Error("recording a failed delivery", "sink", r.display, "event_id", e.EventID, "err", err)
		}
	}
	if len(done) == 0 {
		return
	}
	if err := b.store.DeleteEvents(ctx, r.name, done...); err != nil {
		// They will be delivered again: at least once.
		b.log.Error("removing delivered events from the outbox", "sink", r.display, "err", err)
		return
	}
	r.depth.Add(-int64(len(done)))
	r.delivered.Add(int64(delivered))
	r.droppedExpired.Add(int64(expired))
}

// backoff is the delay before the given retry (1 = the first): exponential
// from Retry.Initial, capped at Retry.Max, with "equal jitter" (between
// half the delay and all of it) so that retries of many events spread out.
func (b *Bus) backoff(retry int) time.Duration {
	d := b.cfg.Retry.Initial
	for i := 1; i < retry && d < b.cfg.Retry.Max; i++ {
		d *= 2
	}
	d = min(d, b.cfg.Retry.Max)
	half := d / 2
	return half + rand.N(d-half+1)
}
