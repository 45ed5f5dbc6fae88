package e2e

// Servers on PostgreSQL. ROSTRUM_TEST_DATABASE=postgres runs every test
// that starts its server through the harness on a node whose state is in
// PostgreSQL (a throw-away cluster the test binary starts; a new database
// per data dir, so a test that restarts a server on its data dir finds its
// state again). The normal run covers PostgreSQL with TestAPIOnPostgres, a
// representative subset, so that CI exercises it without running the
// suite twice.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/store/postgres"
	"github.com/rostrum-dev/rostrum/internal/store/postgres/pgtest"
	"github.com/rostrum-dev/rostrum/internal/store/sqlite"
)

// testDatabase is where the harness's servers keep their state: "" for
// SQLite in the data dir, "postgres" for PostgreSQL.
var testDatabase = os.Getenv("ROSTRUM_TEST_DATABASE")

// pgDatabases maps a data dir to its server's database, for restarts.
var pgDatabases = struct {
	sync.Mutex
	byDir map[string]string
}{byDir: map[string]string{}}

func TestMain(m *testing.M) {
	if testDatabase != "" && testDatabase != "postgres" && testDatabase != "sqlite" {
		fmt.Fprintf(os.Stderr, "ROSTRUM_TEST_DATABASE=%q: want postgres or sqlite\n", testDatabase)
		os.Exit(2)
	}
	code := m.Run()
	if err := pgtest.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the test PostgreSQL:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// useTestDatabase points cfg at PostgreSQL when the harness runs on it
// (before the test's own mutators, which may choose otherwise).
func useTestDatabase(t testing.TB, cfg *config.Config) {
	t.Helper()
	cfg.DatabaseURL = testDatabaseURL(t, cfg.DataDir)
}

// testDatabaseURL is the database of the server with data dir dir when
// the harness runs on PostgreSQL ("" on SQLite): a new one for a new data
// dir, the same one when a server restarts on its data dir.
func testDatabaseURL(t testing.TB, dir string) string {
	t.Helper()
	if testDatabase != "postgres" {
		return ""
	}
	pgDatabases.Lock()
	defer pgDatabases.Unlock()
	u, ok := pgDatabases.byDir[dir]
	if !ok {
		u = pgtest.SharedCluster(t).Database(t)
		pgDatabases.byDir[dir] = u
	}
	return u
}

// serveDatabaseArgs are the flags that put a `rostrum serve` process with
// data dir dir on the test database.
func serveDatabaseArgs(t testing.TB, dir string) []string {
	if u := testDatabaseURL(t, dir); u != "" {
		return []string{"--database-url", u}
	}
	return nil
}

// openServerDatabase opens the database a server with cfg uses, beside it
// or after it, as another process would: tests write what a node would
// have written, or read what is left.
func openServerDatabase(cfg *config.Config) (store.Store, error) {
	if cfg.DatabaseURL != "" {
		return postgres.Open(bg, cfg.DatabaseURL)
	}
	return sqlite.Open(filepath.Join(cfg.DataDir, "rostrum.db"))
}

// TestAPIOnPostgres runs the main API tests (driven by aws-sdk-go-v2), a
// session's records and events, a restart, the outbox across a restart,
// a dead peer's sessions, kill -9 of a `rostrum serve` with pion peers
// publishing and subscribing, and the retention sweep against a node on
// PostgreSQL.
func TestAPIOnPostgres(t *testing.T) {
	if testDatabase == "postgres" {
		t.Skip("the whole suite runs on PostgreSQL (ROSTRUM_TEST_DATABASE=postgres)")
	}
	pgtest.SharedCluster(t) // skips (fails under CI=true) without PostgreSQL
	testDatabase = "postgres"
	defer func() { testDatabase = "" }()
	t.Run("ServerIsOnPostgres", func(t *testing.T) {
		ts := startServer(t, "")
		if !postgres.IsURL(ts.cfg.DatabaseURL) {
			t.Fatalf("the server's database URL is %q", ts.cfg.DatabaseURL)
		}
		if _, err := os.Stat(filepath.Join(ts.cfg.DataDir, "rostrum.db")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a server on PostgreSQL made an SQLite file: %v", err)
		}
	})
	for _, tt := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"StageLifecycle", TestStageLifecycle},
		{"ListStagesPaginates", TestListStagesPaginates},
		{"StageQuotaIsServiceQuotaExceeded", TestStageQuotaIsServiceQuotaExceeded},
		{"OtherAccountsResourcesAreNotVisible", TestOtherAccountsResourcesAreNotVisible},
		{"CreateParticipantTokenClaimsMatchIVS", TestCreateParticipantTokenClaimsMatchIVS},
		{"StorageConfigurationLifecycleAndQuota", TestStorageConfigurationLifecycleAndQuota},
		{"IngestConfigurationLifecycle", TestIngestConfigurationLifecycle},
		{"PublicKeyLifecycle", TestPublicKeyLifecycle},
		{"TagsOnEveryResourceType", TestTagsOnEveryResourceType},
		{"ModelBaselineRequestsPass", TestModelBaselineRequestsPass},
		{"ModelConstraintSweep", TestModelConstraintSweep},
		{"SessionsParticipantsAndEvents", TestSessionsParticipantsAndEvents},
		{"StatePersistsAcrossRestart", TestStatePersistsAcrossRestart},
		{"UndeliveredEventsArriveAfterRestart", TestUndeliveredEventsArriveAfterRestart},
		{"DeadPeerSessionsEnd", TestDeadPeerSessionsEnd},
		{"SessionEndsAfterSIGKILL", TestSessionEndsAfterSIGKILL},
		{"RetentionDeletesExpiredSessions", TestRetentionDeletesExpiredSessions},
		// The media capabilities on a server whose database makes it a
		// node of a cluster (a cluster of one).
		{"CompositionLifecycleThroughTheGoSDK", TestCompositionLifecycleThroughTheGoSDK},
		{"RTMPIngestReachesSubscribers", TestRTMPIngestReachesSubscribers},
		{"ParticipantReplicationCopiesAPublisherIntoAnotherStage", TestParticipantReplicationCopiesAPublisherIntoAnotherStage},
	} {
		t.Run(tt.name, tt.fn)
	}
}
