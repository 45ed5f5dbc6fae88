package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/store/storetest"
)

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rostrum.db")
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := openTemp(t)
		return s
	})
}

// TestConcurrentWriters runs the suite's tests of several stores on one
// database: here several processes (or Stores) on one file.
func TestConcurrentWriters(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "rostrum.db")
		return func(t *testing.T) store.Store {
			s, err := Open(path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		}
	})
}

func TestPragmas(t *testing.T) {
	s, _ := openTemp(t)
	defer s.Close()
	ctx := context.Background()
	check := func(db *sql.DB, pool, pragma, want string) {
		t.Helper()
		var got string
		if err := db.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
			t.Fatalf("%s pool: PRAGMA %s: %v", pool, pragma, err)
		}
		if !strings.EqualFold(got, want) {
			t.Errorf("%s pool: PRAGMA %s = %s, want %s", pool, pragma, got, want)
		}
	}
	for _, p := range []struct {
		db   *sql.DB
		name string
	}{{s.w, "write"}, {s.r, "read"}} {
		check(p.db, p.name, "journal_mode", "wal")
		check(p.db, p.name, "synchronous", "2") // FULL
		check(p.db, p.name, "foreign_keys", "1")
		check(p.db, p.name, "busy_timeout", fmt.Sprint(busyTimeout.Milliseconds()))
	}
	check(s.w, "write", "query_only", "0")
	check(s.r, "read", "query_only", "1")
	if _, err := s.r.ExecContext(ctx, `INSERT INTO settings (name, value) VALUES ('x', 'y')`); err == nil {
		t.Error("read pool accepted a write")
	}
}

func TestOpenRejectsPaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "a?b"} {
		if s, err := Open(p); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", p)
		}
	}
}

func TestRestart(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	sc := &store.Resource{ARN: "arn:aws:ivs:r:1:storage-configuration/s", Kind: "storage-configuration", Owner: "r:1", Doc: []byte(`{"s":1}`)}
	r := &store.Resource{ARN: "arn:aws:ivs:r:1:stage/a", Kind: "stage", Owner: "r:1", Refs: []string{sc.ARN}, Doc: []byte(`{"a":1}`)}
	for _, x := range []*store.Resource{sc, r} {
		if err := s.CreateResource(ctx, x, 0); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Date(2025, 1, 2, 3, 4, 5, 678_900_000, time.UTC)
	if err := s.StartStageSession(ctx, &store.StageSession{StageARN: r.ARN, SessionID: "st-1", StartTime: start}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutSettingIfAbsent(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.GetResource(ctx, r.ARN)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != r.Seq || string(got.Doc) != string(r.Doc) || !got.CreatedAt.Equal(r.CreatedAt) ||
		len(got.Refs) != 1 || got.Refs[0] != sc.ARN || got.ActiveSessionID != "st-1" {
		t.Errorf("after restart: %+v, want %+v with ActiveSessionID st-1", got, r)
	}
	ss, err := s.GetStageSession(ctx, r.ARN, "st-1")
	if err != nil {
		t.Fatal(err)
	}
	if !ss.StartTime.Equal(start.Truncate(time.Millisecond)) || ss.EndTime != nil {
		t.Errorf("session after restart: %+v", ss)
	}
	if v, err := s.GetSetting(ctx, "k"); err != nil || string(v) != "v" {
		t.Errorf("setting after restart: %q, %v", v, err)
	}
	// Seq keeps increasing across restarts.
	n := &store.Resource{ARN: "arn:aws:ivs:r:1:stage/b", Kind: "stage", Owner: "r:1"}
	if err := s.CreateResource(ctx, n, 0); err != nil {
		t.Fatal(err)
	}
	if n.Seq <= r.Seq {
		t.Errorf("Seq %d after restart, not greater than %d", n.Seq, r.Seq)
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	v, err := currentVersion(ctx, s.w)
	if err != nil {
		t.Fatal(err)
	}
	if v != schemaVersion() || v != len(migrations) {
		t.Fatalf("fresh database at version %d, want %d", v, schemaVersion())
	}
	var rows int
	if err := s.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != len(migrations) {
		t.Errorf("schema_migrations has %d rows, want %d", rows, len(migrations))
	}
	s.Close()

	// Reopening applies nothing and keeps the data.
	s, err = Open(path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if v, err := currentVersion(ctx, s.w); err != nil || v != schemaVersion() {
		t.Fatalf("reopened database at version %d, %v", v, err)
	}

	// A database a newer build migrated is refused.
	future := schemaVersion() + 1
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, future); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database from the future succeeded")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open error %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(future)) {
		t.Errorf("error %q does not name version %d", err, future)
	}
}

// TestMigrationAtomic checks that a failing migration leaves the database
// at its old version.
func TestMigrationAtomic(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	s.Close()

	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = append(append([]string(nil), saved...),
		`CREATE TABLE extra (x INTEGER); INSERT INTO no_such_table VALUES (1);`)
	if s, err := Open(path); err == nil {
		s.Close()
		t.Fatal("Open with a failing migration succeeded")
	}
	migrations = saved
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := currentVersion(ctx, s.w); err != nil || v != len(saved) {
		t.Fatalf("version %d, %v; want %d", v, err, len(saved))
	}
	if ok, err := exists(ctx, s.w, `SELECT 1 FROM sqlite_master WHERE name = 'extra'`); err != nil || ok {
		t.Fatalf("table of the failed migration exists: %v, %v", ok, err)
	}
}

// TestTwoStoresQuota runs the quota check from two Stores (two write
// connections, as two processes would have) on one file: BEGIN IMMEDIATE
// and busy_timeout must serialise them without SQLITE_BUSY errors.
func TestTwoStoresQuota(t *testing.T) {
	ctx := context.Background()
	a, path := openTemp(t)
	defer a.Close()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n, limit = 30, 7
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			errs[i] = s.CreateResource(ctx, &store.Resource{
				ARN: fmt.Sprintf("arn:aws:ivs:r:1:stage/%d", i), Kind: "stage", Owner: "r:1",
			}, limit)
		})
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrQuotaExceeded):
			t.Errorf("create %d: %v", i, err)
		}
	}
	if ok != limit {
		t.Errorf("%d creates succeeded, want %d", ok, limit)
	}
	for _, s := range []*Store{a, b} {
		if c, err := s.CountResources(ctx, "stage", "r:1"); err != nil || c != limit {
			t.Errorf("CountResources = %d, %v; want %d", c, err, limit)
		}
	}
}

const crashEnv = "ROSTRUM_SQLITE_CRASH_DB"

// TestCrashChild is the child process of TestCrashDurability: it writes
// until killed, printing a line for every write the store acknowledged.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process of TestCrashDurability")
	}
	s, err := Open(path)
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	ctx := context.Background()
	var mu sync.Mutex
	ack := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(os.Stdout, format+"\n", args...)
	}
	deadline := time.Now().Add(2 * time.Minute) // in case nobody kills us
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				arn := fmt.Sprintf("arn:aws:ivs:r:1:stage/w%d-%d", w, i)
				r := &store.Resource{ARN: arn, Kind: "stage", Owner: "r:1", Doc: []byte(`{"v":1}`)}
				if err := s.CreateResource(ctx, r, 0); err != nil {
					ack("ERR %v", err)
					os.Exit(2)
				}
				ack("CREATED %s", arn)
				if i%2 == 0 {
					if _, err := s.UpdateResource(ctx, arn, func(r *store.Resource) error {
						r.Doc = []byte(`{"v":2}`)
						return nil
					}); err != nil {
						ack("ERR %v", err)
						os.Exit(2)
					}
					ack("UPDATED %s", arn)
				}
			}
		})
	}
	wg.Wait()
	ack("DONE")
	os.Exit(0)
}

// TestCrashDurability kills a writing process with SIGKILL and checks that
// every write it acknowledged is in the database. (kill -9 tests that an
// acknowledged write is committed to the file, not held in a buffer; power
// loss is what synchronous=FULL adds to that, and cannot be tested here.)
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill() // if the test fails before it does
	killed := false
	timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
	defer timer.Stop()

	created := map[string]bool{}
	updated := map[string]bool{}
	const killAfter = 300
	acks := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "CREATED "):
			created[strings.TrimPrefix(line, "CREATED ")] = true
		case strings.HasPrefix(line, "UPDATED "):
			updated[strings.TrimPrefix(line, "UPDATED ")] = true
		case strings.HasPrefix(line, "ERR"), line == "DONE":
			t.Fatalf("child: %s", line)
		default:
			continue
		}
		acks++
		if acks == killAfter && !killed {
			// Mid-way: four writers are in flight.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	// Lines the child wrote before it died are still read above, from the
	// pipe's buffer, until EOF.
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child exited before it was killed: %v, %d acks", err, acks)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Success() {
		t.Fatalf("child: %v, want killed", err)
	}
	t.Logf("child acknowledged %d creates and %d updates before SIGKILL", len(created), len(updated))

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var integrity string
	if err := s.w.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: %q, %v", integrity, err)
	}
	for arn := range created {
		r, err := s.GetResource(ctx, arn)
		if err != nil {
			t.Errorf("acknowledged %s: %v", arn, err)
			continue
		}
		if updated[arn] && string(r.Doc) != `{"v":2}` {
			t.Errorf("acknowledged update of %s lost: Doc %s", arn, r.Doc)
		}
	}
	n, err := s.CountResources(ctx, "stage", "r:1")
	if err != nil {
		t.Fatal(err)
	}
	// At most one unacknowledged create per writer can have committed.
	if n < len(created) || n > len(created)+4 {
		t.Errorf("%d resources in the database, %d acknowledged", n, len(created))
	}
}

// TestMigrationKeepsSessionsOwnerless upgrades a database from before
// sessions had owners: its active sessions belong to node "", which a
// starting server closes as its previous run's.
func TestMigrationKeepsSessionsOwnerless(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "rostrum.db")
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = saved[:2]
	// The old schema through the migrations alone: Open prepares the
	// current schema's statements, which an old one cannot answer.
	old, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, old); err != nil {
		t.Fatal(err)
	}
	const stage = "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234"
	for _, q := range []string{
		`INSERT INTO resources (arn, kind, owner, active_session_id, doc, created_at) VALUES ('` + stage + `', 'stage', 'o', 'st-1', '{}', 0)`,
		`INSERT INTO stage_sessions (stage_arn, session_id, start_time) VALUES ('` + stage + `', 'st-1', 1000)`,
	} {
		if _, err := old.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()
	migrations = saved
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ss, err := s.GetStageSession(ctx, stage, "st-1")
	if err != nil || ss.NodeID != "" || ss.EndTime != nil {
		t.Fatalf("session after the upgrade: %+v, %v", ss, err)
	}
	if n, err := s.CloseNodeSessions(ctx, "", time.Time{}, nil); err != nil || n != 1 {
		t.Fatalf("closing the ownerless sessions: %d, %v", n, err)
	}
	if r, err := s.GetResource(ctx, stage); err != nil || r.ActiveSessionID != "" {
		t.Fatalf("stage after closing: %+v, %v", r, err)
	}
}
