package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store/postgres/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pgtest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test PostgreSQL:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

const testLease = 900 * time.Millisecond

// node joins a cluster on db as id, with the given subscriber capacity and
// a load that the test sets.
type testNode struct {
	*Cluster
	mu   sync.Mutex
	load Load
}

func (n *testNode) setLoad(l Load) {
	n.mu.Lock()
	n.load = l
	n.mu.Unlock()
}

func join(t *testing.T, db, id string, maxSubs int) *testNode {
	t.Helper()
	c, err := Open(context.Background(), Config{DatabaseURL: db, NodeID: id, URL: "http://" + id + ".invalid", Lease: testLease,
		MaxPublishers: 100, MaxSubscribers: maxSubs, Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	n := &testNode{Cluster: c}
	c.SetLoad(func() Load {
		n.mu.Lock()
		defer n.mu.Unlock()
		return n.load
	})
	t.Cleanup(func() { c.Close(context.Background()) })
	return n
}

// die stops a node as kill -9 would: no more renewals, its connections
// gone, nothing given up.
func (n *testNode) die() {
	n.once.Do(func() {
		n.cancel()
		n.wg.Wait()
		n.pool.Close()
	})
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A stage goes to the node with the most free capacity and stays there
// while its lease is renewed, whichever node asks; a draining node gets
// no new stage; a dead node's stage is taken over once its lease expires,
// naming the dead node.
func TestPlacementLeasesAndTakeover(t *testing.T) {
	db := pgtest.SharedCluster(t).Database(t)
	ctx := context.Background()
	a := join(t, db, "a", 300)
	b := join(t, db, "b", 200)
	c := join(t, db, "c", 100)
	for _, n := range []*testNode{a, b, c} {
		n.Start()
	}
	p, err := c.Place(ctx, "stage-1")
	if err != nil {
		t.Fatal(err)
	}
	if p.Node.ID != "a" || p.Self || p.Previous != "" {
		t.Fatalf("placed on %+v, want a (most free subscriber slots)", p)
	}
	a.setLoad(Load{Stages: []string{"stage-1"}, Subscribers: 250})
	if err := a.renew(ctx); err != nil {
		t.Fatal(err)
	}
	// b has more free slots than a now.
	p2, err := a.Place(ctx, "stage-2")
	if err != nil || p2.Node.ID != "b" {
		t.Fatalf("second stage placed on %+v (%v), want b", p2, err)
	}
	// Beyond several lease times, stage-1 stays on a: a renews it.
	time.Sleep(3 * testLease)
	if p, err := b.Place(ctx, "stage-1"); err != nil || p.Node.ID != "a" || p.Previous != "" {
		t.Fatalf("stage-1 after renewals: %+v %v", p, err)
	}
	// b drains: no new stage for it, even with the most free capacity.
	if err := b.SetDraining(ctx, true); err != nil {
		t.Fatal(err)
	}
	if p, err := a.Place(ctx, "stage-3"); err != nil || p.Node.ID == "b" {
		t.Fatalf("stage-3 on %+v (%v): b drains", p, err)
	}
	// stage-2, placed on b, stays there while b runs it.
	b.setLoad(Load{Stages: []string{"stage-2"}})
	time.Sleep(2 * testLease)
	if p, err := c.Place(ctx, "stage-2"); err != nil || p.Node.ID != "b" {
		t.Fatalf("stage-2 on a draining b that runs it: %+v %v", p, err)
	}
	if err := b.SetDraining(ctx, false); err != nil {
		t.Fatal(err)
	}

	// a dies: its stage stays placed on it until the lease expires, then
	// goes elsewhere, and the placement names a.
	a.die()
	var moved *Placement
	waitFor(t, "stage-1 to be taken over", func() bool {
		p, err := c.Place(ctx, "stage-1")
		if err != nil {
			t.Fatal(err)
		}
		if p.Node.ID != "a" {
			moved = p
			return true
		}
		return false
	})
	if moved.Previous != "a" || (moved.Node.ID != "b" && moved.Node.ID != "c") {
		t.Fatalf("taken over: %+v", moved)
	}
	if n, err := c.Node(ctx, "a"); err != nil || n == nil || n.Alive {
		t.Fatalf("the dead node: %+v %v", n, err)
	}
}

// A node's live stage whose lease another node took (the node could not
// renew in time) is reported lost, so that the node lets it go.
func TestLostLeaseIsReported(t *testing.T) {
	db := pgtest.SharedCluster(t).Database(t)
	ctx := context.Background()
	a := join(t, db, "a", 100)
	b := join(t, db, "b", 100)
	lost := make(chan string, 1)
	a.OnLost(func(arn, owner string) { lost <- arn + "@" + owner })
	if _, err := a.pool.Exec(ctx, `INSERT INTO stage_leases VALUES ('s', 'b', `+dbNow+` + 10000, `+dbNow+`)`); err != nil {
		t.Fatal(err)
	}
	a.setLoad(Load{Stages: []string{"s"}})
	if err := a.renew(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-lost:
		if got != "s@b" {
			t.Fatalf("lost %s", got)
		}
	default:
		t.Fatal("the lost stage was not reported")
	}
	_ = b
}

// Messages reach every other node, not the sender.
func TestNotifyReachesTheOtherNodes(t *testing.T) {
	db := pgtest.SharedCluster(t).Database(t)
	a := join(t, db, "a", 100)
	b := join(t, db, "b", 100)
	gotA, gotB := make(chan string, 4), make(chan string, 4)
	a.Handle("test_channel", func(from, body string) { gotA <- from + ":" + body })
	b.Handle("test_channel", func(from, body string) { gotB <- from + ":" + body })
	a.Start()
	b.Start()
	// The listeners connect asynchronously: send until one arrives.
	deadline := time.After(30 * time.Second)
	for {
		if err := a.Notify(context.Background(), "test_channel", "hello"); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-gotB:
			if got != "a:hello" {
				t.Fatalf("b got %q", got)
			}
			select {
			case g := <-gotA:
				t.Fatalf("the sender got its own message %q", g)
			default:
			}
			return
		case <-time.After(200 * time.Millisecond):
		case <-deadline:
			t.Fatal("b never got the message")
		}
	}
}

// One node at a time holds a claim; a dead node's claim passes to another.
func TestClaimIsExclusiveAndSurvivesItsHolder(t *testing.T) {
	db := pgtest.SharedCluster(t).Database(t)
	ctx := context.Background()
	a := join(t, db, "a", 100)
	b := join(t, db, "b", 100)
	held, release, ok, err := a.TryClaim(ctx, "sink-1")
	if err != nil || !ok {
		t.Fatalf("a's claim: %v %v", ok, err)
	}
	_ = release
	if _, _, ok, err := b.TryClaim(ctx, "sink-1"); err != nil || ok {
		t.Fatalf("b claimed what a holds: %v %v", ok, err)
	}
	// Another key is free.
	_, rel2, ok, err := b.TryClaim(ctx, "sink-2")
	if err != nil || !ok {
		t.Fatalf("b's claim of another key: %v %v", ok, err)
	}
	rel2()
	a.die()
	<-held.Done()
	waitFor(t, "b to claim what the dead a held", func() bool {
		_, rel, ok, err := b.TryClaim(ctx, "sink-1")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			rel()
		}
		return ok
	})
}
