package events

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// claim is a claim that the test grants and takes back.
type claim struct {
	mu     sync.Mutex
	grant  bool
	held   context.Context
	cancel context.CancelFunc
	tries  int
}

func (c *claim) try(ctx context.Context, sink string) (context.Context, func(), bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tries++
	if !c.grant {
		return nil, nil, false, nil
	}
	c.held, c.cancel = context.WithCancel(ctx)
	cancel := c.cancel
	return c.held, cancel, true, nil
}

func (c *claim) set(grant bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.grant = grant
	if !grant && c.cancel != nil {
		c.cancel() // the claim is lost
	}
}

func (c *claim) attempts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tries
}

// With a claim (several nodes on one outbox), a node delivers a sink's
// events only while it holds the sink's claim; what it accepted meanwhile
// waits in the outbox, and a lost claim stops its deliveries.
func TestBusDeliversOnlyWhileItHoldsTheClaim(t *testing.T) {
	st, _ := openStore(t)
	sink := newFakeSink("hook", nil)
	cl := &claim{}
	b := newBus(t, st, Config{Sinks: []SinkConfig{{Sink: sink}}, Claim: cl.try, ClaimPoll: 5 * time.Millisecond})
	publish(t, b, update(1, 1))
	testutil.Eventually(t, "a few claim attempts", func() bool { return cl.attempts() >= 3 })
	if got := sink.delivered(); len(got) != 0 {
		t.Fatalf("delivered %d events without the claim", len(got))
	}
	cl.set(true)
	testutil.Eventually(t, "the event delivered once claimed", func() bool { return len(sink.delivered()) == 1 })
	cl.set(false)
	tries := cl.attempts()
	testutil.Eventually(t, "claim attempts after the claim was lost", func() bool { return cl.attempts() > tries+2 })
	publish(t, b, update(1, 2))
	// Attempts go on, the sink gets nothing: the event waits in the
	// outbox for whichever node holds the claim.
	tries = cl.attempts()
	testutil.Eventually(t, "more claim attempts", func() bool { return cl.attempts() > tries+2 })
	if got := sink.delivered(); len(got) != 1 {
		t.Fatalf("delivered %d events, want 1: the second waits for the claim", len(got))
	}
	if n, _ := st.CountEvents(context.Background()); n["hook"] != 1 {
		t.Fatalf("outbox %v, want the second event waiting", n)
	}
	cl.set(true)
	testutil.Eventually(t, "the waiting event delivered once claimed again", func() bool { return len(sink.delivered()) == 2 })
}

// Relay gets every accepted event; Receive puts another node's event on
// this node's live feed.
func TestBusRelaysAndReceivesLiveEvents(t *testing.T) {
	st, _ := openStore(t)
	relayed := make(chan *Live, 4)
	b := newBus(t, st, Config{Relay: func(l *Live) { relayed <- l }})
	sub, _ := b.Subscribe(func(*Live) bool { return true }, "")
	ev := update(1, 1)
	publish(t, b, ev)
	select {
	case l := <-relayed:
		if l.ID != ev.ID {
			t.Fatalf("relayed %s, want %s", l.ID, ev.ID)
		}
	case <-time.After(testutil.Patience):
		t.Fatal("the accepted event was not relayed")
	}
	other := update(2, 7)
	if err := b.Receive(other.ID, other.Marshal(), other.Account); err != nil {
		t.Fatal(err)
	}
	if err := b.Receive("x", []byte("not json"), ""); err == nil {
		t.Error("an undecodable relayed event was accepted")
	}
	var ids []string
	for len(ids) < 2 {
		select {
		case l := <-sub.Events():
			ids = append(ids, l.ID)
		case <-time.After(testutil.Patience):
			t.Fatalf("the live feed has %v", ids)
		}
	}
	if ids[0] != ev.ID || ids[1] != other.ID {
		t.Fatalf("live feed %v, want [%s %s]", ids, ev.ID, other.ID)
	}
}
