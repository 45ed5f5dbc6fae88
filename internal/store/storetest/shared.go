package storetest

// Concurrent writers on several stores of one database: each store has its
// own connections, as each of several nodes sharing a database would.
// Quotas, idempotency and Seq pagination must stay exact across them.

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store"
)

// SharedOpener opens a new, empty database and returns attach, which opens
// one more store on that database (its own connections) each time it is
// called. RunShared closes the stores when the subtest ends.
type SharedOpener func(t *testing.T) (attach func(t *testing.T) store.Store)

// RunShared runs the concurrency tests of several stores on one database.
func RunShared(t *testing.T, open SharedOpener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, stores []store.Store)
	}{
		{"QuotaAcrossStores", testSharedQuota},
		{"DuplicateAcrossStores", testSharedDuplicate},
		{"ListTailAcrossStores", testSharedListTail},
		{"OutboxOrderAcrossStores", testSharedOutboxOrder},
		{"SettingAcrossStores", testSharedSetting},
		{"CloseNodeSessionsAcrossStores", testSharedCloseNode},
	}
	const nStores = 4
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attach := open(t)
			stores := make([]store.Store, nStores)
			for i := range stores {
				s := attach(t)
				stores[i] = s
				t.Cleanup(func() {
					if err := s.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				})
			}
			tt.fn(t, stores)
		})
	}
}

// testSharedQuota hammers quota-limited creates from many goroutines on
// every store while a watcher counts: the count never exceeds the quota,
// exactly the quota's worth of creates succeed, and with deletes freeing
// room meanwhile the count still never exceeds it.
func testSharedQuota(t *testing.T, stores []store.Store) {
	const perStore, limit = 12, 7
	var stop atomic.Bool
	var watched atomic.Int64
	watcher := make(chan error, 1)
	go func() {
		defer close(watcher)
		for !stop.Load() {
			n, err := stores[len(stores)-1].CountResources(ctx, kStage, owner1)
			if err != nil {
				watcher <- err
				return
			}
			if n > limit {
				watcher <- fmt.Errorf("the watcher counted %d stages, over the quota of %d", n, limit)
				return
			}
			watched.Add(1)
		}
	}()
	var created atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for si, s := range stores {
		for i := range perStore {
			wg.Go(func() {
				<-start
				err := s.CreateResource(ctx, newRes(owner1, kStage, fmt.Sprintf("s%d-%d", si, i), ""), limit)
				switch {
				case err == nil:
					created.Add(1)
				case errors.Is(err, store.ErrQuotaExceeded):
				default:
					t.Errorf("create: %v", err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if got := created.Load(); got != limit {
		t.Errorf("%d of %d concurrent creates succeeded, want exactly %d", got, len(stores)*perStore, limit)
	}

	// Deletes and creates at once: each delete frees one place that at
	// most one create can take.
	rs, err := stores[0].ListResources(ctx, store.ResourceQuery{Kind: kStage, Owner: owner1})
	if err != nil {
		t.Fatal(err)
	}
	var deleted atomic.Int64
	start = make(chan struct{})
	for i, r := range rs[:3] {
		wg.Go(func() {
			<-start
			if err := stores[i%len(stores)].DeleteResource(ctx, r.ARN, noCheck); err != nil {
				t.Errorf("delete: %v", err)
			}
			deleted.Add(1)
		})
	}
	var again atomic.Int64
	for si, s := range stores {
		for i := range perStore {
			wg.Go(func() {
				<-start
				err := s.CreateResource(ctx, newRes(owner1, kStage, fmt.Sprintf("again-s%d-%d", si, i), ""), limit)
				switch {
				case err == nil:
					again.Add(1)
				case errors.Is(err, store.ErrQuotaExceeded):
				default:
					t.Errorf("create: %v", err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	stop.Store(true)
	if err := <-watcher; err != nil {
		t.Error(err)
	}
	if again.Load() > deleted.Load() {
		t.Errorf("%d creates succeeded after %d deletes", again.Load(), deleted.Load())
	}
	n, err := stores[1].CountResources(ctx, kStage, owner1)
	if err != nil {
		t.Fatal(err)
	}
	if want := limit - deleted.Load() + again.Load(); int64(n) != want || n > limit {
		t.Errorf("CountResources = %d, want %d (quota %d)", n, want, limit)
	}
	t.Logf("the watcher counted %d times", watched.Load())
}

// testSharedDuplicate: every store creates the same ARN at once; one
// wins, the others get ErrAlreadyExists.
func testSharedDuplicate(t *testing.T, stores []store.Store) {
	const perStore = 5
	var ok, dup atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, s := range stores {
		for range perStore {
			wg.Go(func() {
				<-start
				err := s.CreateResource(ctx, newRes(owner1, kStage, "same", ""), 100)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, store.ErrAlreadyExists):
					dup.Add(1)
				default:
					t.Errorf("create: %v", err)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || dup.Load() != int64(len(stores)*perStore-1) {
		t.Errorf("%d creates succeeded and %d found the resource, want 1 and %d", ok.Load(), dup.Load(), len(stores)*perStore-1)
	}
	if n, err := stores[0].CountResources(ctx, kStage, owner1); err != nil || n != 1 {
		t.Errorf("CountResources = %d, %v; want 1", n, err)
	}
}

// testSharedListTail: writers on every store create resources while a
// reader tails the list (each page after the last Seq it saw). A resource
// that became visible after one with a higher Seq would be skipped for
// ever; the reader must see every resource once, in Seq order.
func testSharedListTail(t *testing.T, stores []store.Store) {
	const perWriter, writersPerStore = 25, 3
	var wg sync.WaitGroup
	var done, stop atomic.Bool
	for si, s := range stores {
		for w := range writersPerStore {
			wg.Go(func() {
				for i := range perWriter {
					if stop.Load() {
						return
					}
					if err := s.CreateResource(ctx, newRes(owner1, kStage, fmt.Sprintf("s%d-w%d-%d", si, w, i), ""), 0); err != nil {
						t.Errorf("create: %v", err)
						return
					}
				}
			})
		}
	}
	go func() { wg.Wait(); done.Store(true) }()
	// A failing check stops the writers and waits for them before the
	// stores close.
	defer func() { stop.Store(true); wg.Wait() }()

	reader := stores[0]
	seen := map[string]bool{}
	var after int64
	tail := func() {
		for {
			rs, err := reader.ListResources(ctx, store.ResourceQuery{Kind: kStage, Owner: owner1, Page: store.Page{After: after, Limit: 10}})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rs {
				if i == 10 {
					break // the extra row says another page follows
				}
				if r.Seq <= after {
					t.Fatalf("Seq %d after %d", r.Seq, after)
				}
				if seen[r.ARN] {
					t.Fatalf("%s listed twice", r.ARN)
				}
				seen[r.ARN] = true
				after = r.Seq
			}
			if len(rs) <= 10 {
				return
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for !done.Load() {
		tail()
		if time.Now().After(deadline) {
			t.Fatal("writers did not finish within a minute")
		}
	}
	wg.Wait()
	tail()
	if want := len(stores) * writersPerStore * perWriter; len(seen) != want {
		all, _ := reader.ListResources(ctx, store.ResourceQuery{Kind: kStage, Owner: owner1})
		var missed []string
		for _, r := range all {
			if !seen[r.ARN] {
				missed = append(missed, fmt.Sprintf("%s (Seq %d)", r.ARN, r.Seq))
			}
		}
		t.Errorf("the tailing reader saw %d of %d resources; missed %v", len(seen), want, missed)
	}
}

// testSharedOutboxOrder: writers on every store enqueue into a few
// partitions while a drainer delivers what is pending. Each partition
// must come out in Seq order, with every writer's entries in the order it
// wrote them, each once.
func testSharedOutboxOrder(t *testing.T, stores []store.Store) {
	const perWriter, writersPerStore, partitions = 60, 8, 2
	var wg sync.WaitGroup
	var done, stop atomic.Bool
	for si, s := range stores {
		for w := range writersPerStore {
			wg.Go(func() {
				// Batches that span the partitions: the first entry's
				// Seq is taken well before the commit.
				for i := 0; i < perWriter && !stop.Load(); i += partitions {
					var batch []*store.OutboxEntry
					for j := i; j < i+partitions; j++ {
						e := outboxEntry("w", fmt.Sprintf("p%d", j%partitions), j, ts(0))
						e.EventID = fmt.Sprintf("s%d-w%d-%d", si, w, j)
						batch = append(batch, e)
					}
					if err := s.EnqueueEvents(ctx, batch...); err != nil {
						t.Errorf("enqueue: %v", err)
						return
					}
				}
			})
		}
	}
	go func() { wg.Wait(); done.Store(true) }()
	defer func() { stop.Store(true); wg.Wait() }()

	drainer := stores[0]
	lastSeq := map[string]int64{}
	lastOf := map[string]int{} // writer/partition -> its last entry number
	delivered := map[int64]bool{}
	total := 0
	drain := func() int {
		ready, _, err := drainer.PendingEvents(ctx, "w", ts(0), 0)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, e := range ready {
			if delivered[e.Seq] {
				t.Fatalf("entry %d offered twice", e.Seq)
			}
			delivered[e.Seq] = true
			if e.Seq <= lastSeq[e.Partition] {
				t.Fatalf("partition %s: entry %d offered after %d", e.Partition, e.Seq, lastSeq[e.Partition])
			}
			lastSeq[e.Partition] = e.Seq
			var si, w, i int
			if _, err := fmt.Sscanf(e.EventID, "s%d-w%d-%d", &si, &w, &i); err != nil {
				t.Fatal(err)
			}
			key := fmt.Sprintf("s%d-w%d/%s", si, w, e.Partition)
			if last, ok := lastOf[key]; ok && i <= last {
				t.Fatalf("%s: entry %d offered after %d", key, i, last)
			}
			lastOf[key] = i
			seqs = append(seqs, e.Seq)
		}
		if err := drainer.DeleteEvents(ctx, "w", seqs...); err != nil {
			t.Fatal(err)
		}
		total += len(seqs)
		return len(seqs)
	}
	deadline := time.Now().Add(time.Minute)
	for !done.Load() {
		drain()
		if time.Now().After(deadline) {
			t.Fatal("writers did not finish within a minute")
		}
	}
	wg.Wait()
	for drain() > 0 {
	}
	if want := len(stores) * writersPerStore * perWriter; total != want {
		t.Errorf("delivered %d entries, want %d", total, want)
	}
	if c, err := drainer.CountEvents(ctx); err != nil || c["w"] != 0 {
		t.Errorf("outbox after draining: %v, %v", c, err)
	}
}

// testSharedSetting: first writers on every store agree on one value.
func testSharedSetting(t *testing.T, stores []store.Store) {
	got := make([][]byte, len(stores)*3)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range got {
		wg.Go(func() {
			<-start
			v, err := stores[i%len(stores)].PutSettingIfAbsent(ctx, "node-id", []byte(fmt.Sprint(i)))
			if err != nil {
				t.Errorf("PutSettingIfAbsent: %v", err)
			}
			got[i] = v
		})
	}
	close(start)
	wg.Wait()
	for i, v := range got {
		if !slices.Equal(v, got[0]) {
			t.Errorf("caller %d got %q, caller 0 %q", i, v, got[0])
		}
	}
}

// testSharedCloseNode: peers on every store close one dead node's
// sessions at once; the sessions are closed once, with one set of final
// events and outbox entries.
func testSharedCloseNode(t *testing.T, stores []store.Store) {
	s := stores[0]
	const sessions = 5
	for i := range sessions {
		st := mustCreate(t, s, newRes(owner1, kStage, fmt.Sprint(i), ""))
		nodeSession(t, s, st.ARN, "st-1", "dead", ts(0))
		putPart(t, s, st.ARN, "st-1", "alice", "CONNECTED")
	}
	if err := s.Heartbeat(ctx, "dead", ts(5)); err != nil {
		t.Fatal(err)
	}
	closedBy := make([]int, len(stores)*2)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range closedBy {
		wg.Go(func() {
			<-start
			var cl closeAll
			n, err := stores[i%len(stores)].CloseNodeSessions(ctx, "dead", ts(30), cl.fn)
			if err != nil {
				t.Errorf("CloseNodeSessions: %v", err)
			}
			closedBy[i] = n
		})
	}
	close(start)
	wg.Wait()
	slices.Sort(closedBy)
	if closedBy[len(closedBy)-1] != sessions || closedBy[len(closedBy)-2] != 0 {
		t.Errorf("sessions closed by each peer: %v, want one peer closing %d", closedBy, sessions)
	}
	if c := counts(t, s); c["sink"] != sessions {
		t.Errorf("outbox: %v, want %d entries (one per session, once)", c, sessions)
	}
	for i := range sessions {
		evs, err := s.ListParticipantEvents(ctx, arn(owner1, kStage, fmt.Sprint(i)), "st-1", "alice", store.Page{})
		if err != nil || len(evs) != 1 {
			t.Errorf("stage %d: alice has %d events, %v; want one LEFT", i, len(evs), err)
		}
	}
}
