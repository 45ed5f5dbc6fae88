package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/store/postgres/pgtest"
	"github.com/rostrum-dev/rostrum/internal/store/storetest"
)

func open(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// TestConformance runs the store conformance suite against a real
// PostgreSQL: a new database for every subtest.
func TestConformance(t *testing.T) {
	c := pgtest.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, c.Database(t))
	})
}

// TestConcurrentWriters runs the suite's concurrency tests: several
// stores (each its own pool of connections, as several nodes would have)
// on one database.
func TestConcurrentWriters(t *testing.T) {
	c := pgtest.Start(t)
	storetest.RunShared(t, func(t *testing.T) func(t *testing.T) store.Store {
		url := c.Database(t)
		return func(t *testing.T) store.Store { return open(t, url) }
	})
}

// TestMigrationsConcurrent starts several stores on a new database at
// once, as several nodes starting together would: the advisory lock lets
// one migrate and the others find the schema current.
func TestMigrationsConcurrent(t *testing.T) {
	c := pgtest.Start(t)
	url := c.Database(t)
	const n = 8
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(context.Background(), url)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
	}
	if t.Failed() {
		return
	}
	ctx := context.Background()
	var rows, v int
	if err := stores[0].pool.QueryRow(ctx, `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&rows, &v); err != nil {
		t.Fatal(err)
	}
	if rows != schemaVersion() || v != schemaVersion() {
		t.Errorf("schema_migrations: %d rows up to version %d, want %d (each version applied once)", rows, v, schemaVersion())
	}
	// Every store works.
	for i, s := range stores {
		r := &store.Resource{ARN: fmt.Sprintf("arn:aws:ivs:r:1:stage/%d", i), Kind: "stage", Owner: "r:1"}
		if err := s.CreateResource(ctx, r, 0); err != nil {
			t.Errorf("store %d: %v", i, err)
		}
	}
}

func TestMigrations(t *testing.T) {
	c := pgtest.Start(t)
	url := c.Database(t)
	ctx := context.Background()
	s := open(t, url)
	r := &store.Resource{ARN: "arn:aws:ivs:r:1:stage/a", Kind: "stage", Owner: "r:1", Doc: []byte(`{"a":1}`)}
	if err := s.CreateResource(ctx, r, 0); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Reopening applies nothing and keeps the data.
	s = open(t, url)
	if v, err := currentVersion(ctx, s.pool); err != nil || v != schemaVersion() {
		t.Fatalf("reopened database at version %d, %v", v, err)
	}
	if got, err := s.GetResource(ctx, r.ARN); err != nil || string(got.Doc) != `{"a":1}` || got.Seq != r.Seq {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}

	// A database a newer build migrated is refused.
	future := schemaVersion() + 1
	if _, err := s.pool.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)`, future); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err := Open(ctx, url)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database from the future succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), fmt.Sprint(future)) {
		t.Fatalf("Open error %v, want ErrSchemaTooNew naming version %d", err, future)
	}
}

// TestMigrationAtomic: a migration that fails leaves the database at its
// old version, and the lock is released for the next node.
func TestMigrationAtomic(t *testing.T) {
	c := pgtest.Start(t)
	url := c.Database(t)
	ctx := context.Background()
	// Version 1 only, then a table that migration 2 will fail to create.
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	saved := migrations
	migrations = migrations[:1]
	s, err := Open(ctx, url)
	migrations = saved
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := conn.Exec(ctx, `CREATE TABLE event_outbox (x int)`); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(ctx, url); err == nil {
		s.Close()
		t.Fatal("Open succeeded over a conflicting table")
	}
	if v, err := currentVersion(ctx, conn); err != nil || v != 1 {
		t.Fatalf("after a failed migration: version %d, %v; want 1", v, err)
	}
	if _, err := conn.Exec(ctx, `DROP TABLE event_outbox`); err != nil {
		t.Fatal(err)
	}
	s = open(t, url) // the failed attempt released the lock
	defer s.Close()
	if v, err := currentVersion(ctx, s.pool); err != nil || v != schemaVersion() {
		t.Fatalf("version %d, %v; want %d", v, err, schemaVersion())
	}
}

func TestOpenRejectsURLs(t *testing.T) {
	for _, u := range []string{"", "mysql://x", "/var/lib/rostrum.db", "postgres://u:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=1"} {
		s, err := Open(context.Background(), u)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error shows the password: %v", u, err)
		}
	}
}

// TestSynchronousCommit: connections commit durably unless the URL says
// otherwise.
func TestSynchronousCommit(t *testing.T) {
	c := pgtest.Start(t)
	url := c.Database(t)
	ctx := context.Background()
	for _, x := range []struct{ url, want string }{
		{url, "on"},
		{url + "&synchronous_commit=remote_apply", "remote_apply"},
	} {
		s := open(t, x.url)
		var got string
		if err := s.pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&got); err != nil {
			t.Fatal(err)
		}
		s.Close()
		if got != x.want {
			t.Errorf("synchronous_commit = %s, want %s", got, x.want)
		}
	}
}

// waitForLockWait waits until a backend of the database waits for an
// advisory lock: the writer under test has reached its lock and is held
// there by the test's transaction.
func waitForLockWait(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		if err := s.pool.QueryRow(context.Background(), `SELECT COUNT(*) FROM pg_locks
WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer never waited for the lock the open transaction holds")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSeqOrderIsCommitOrder: a transaction that has taken an outbox Seq
// (or holds a quota count) and not yet committed makes another writer of
// the same partition (or kind and owner) wait, so that the other's
// younger Seq cannot become visible first. Deterministic counterpart of
// storetest's ListTail and OutboxOrder tests, which catch a missing lock
// only when the race happens to occur.
func TestSeqOrderIsCommitOrder(t *testing.T) {
	c := pgtest.Start(t)
	url := c.Database(t)
	ctx := context.Background()
	a, b := open(t, url), open(t, url)
	defer a.Close()
	defer b.Close()

	t.Run("outbox", func(t *testing.T) {
		tx, err := a.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		first := &store.OutboxEntry{Sink: "w", Partition: "p", EventID: "first"}
		seqs, err := insertOutbox(ctx, tx, []*store.OutboxEntry{first})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		second := &store.OutboxEntry{Sink: "w", Partition: "p", EventID: "second"}
		go func() { done <- b.EnqueueEvents(ctx, second) }()
		waitForLockWait(t, b)
		// The other partition is not held back.
		if err := b.EnqueueEvents(ctx, &store.OutboxEntry{Sink: "w", Partition: "other"}); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if second.Seq <= seqs[0] {
			t.Errorf("the second entry has Seq %d, not after the first's %d", second.Seq, seqs[0])
		}
	})
	t.Run("resources", func(t *testing.T) {
		tx, err := a.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if err := lockKey(ctx, tx, lockKindOwner, "stage", "r:1"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- b.CreateResource(ctx, &store.Resource{ARN: "arn:aws:ivs:r:1:stage/x", Kind: "stage", Owner: "r:1"}, 1)
		}()
		waitForLockWait(t, b)
		// What the open transaction writes counts for the waiting create.
		if _, err := tx.Exec(ctx, `INSERT INTO resources (arn, kind, owner, doc, created_at) VALUES ('arn:aws:ivs:r:1:stage/y', 'stage', 'r:1', '', 0)`); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, store.ErrQuotaExceeded) {
			t.Errorf("create after the held create committed: %v, want ErrQuotaExceeded", err)
		}
	})
}
