// Package sqlite is the embedded, default implementation of store.Store: one
// SQLite database file, through database/sql and the pure-Go
// modernc.org/sqlite driver, so that a Rostrum binary needs no cgo and no
// database server.
//
// # Durability and concurrency
//
// The database runs in WAL mode with synchronous=FULL. WAL lets readers run
// while a write is in progress, and FULL makes SQLite fsync the WAL on every
// commit, so a write the store has acknowledged survives not only kill -9 (any
// mode does: the data is in the OS page cache) but also power loss and kernel
// panics. synchronous=NORMAL, the usual WAL companion, would only guarantee a
// consistent database after power loss, possibly missing the last
// transactions, which store.Store does not allow.
//
// Writes go through a pool of exactly one connection, and every write
// transaction begins with BEGIN IMMEDIATE (_txlock=immediate). Within this
// process the single connection queues writers in Go rather than in SQLite's
// sleep-and-retry busy handler. Across connections (another Store or process
// on the same file) BEGIN IMMEDIATE takes the write lock before the
// transaction's first read: with a deferred BEGIN, two transactions that both
// read and then write (a quota count, then an insert) can each hold a read
// snapshot and neither can upgrade, and SQLite then fails one with
// SQLITE_BUSY at once, without waiting for busy_timeout. Reads use a separate
// pool of read-only (query_only) connections; a read that spans several
// statements runs in one read transaction so that it sees one snapshot.
//
// Because the write pool holds one connection, a callback given to
// UpdateResource or DeleteResource must not call the Store: it would wait for
// the connection its caller holds.
//
// # Schema
//
// The schema is created and upgraded by the ordered migrations in schema.go,
// recorded in schema_migrations; Open refuses a database whose recorded
// version is newer than this build knows (ErrSchemaTooNew). The SQL sticks to
// what PostgreSQL also accepts (plain types, ON CONFLICT, RETURNING, no JSON
// functions): documents are opaque BLOBs, references live in the side table
// resource_refs, and booleans are 0/1 INTEGERs.
//
// Times are stored as INTEGER unix milliseconds in UTC (BIGINT in
// PostgreSQL): the precision of the IVS API's timestamps, trivially ordered
// and compared, and free of text-format and time-zone ambiguity. Times read
// back are in UTC, truncated to the millisecond.
//
// Deleting a stage deletes, by foreign-key cascade, its sessions, their
// participants and events, the replicas it is the source of and its revoked
// participant ids.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/rostrum-dev/rostrum/internal/store"
)

// ErrSchemaTooNew is returned (wrapped) by Open when the database was last
// migrated by a newer Rostrum than this one.
var ErrSchemaTooNew = errors.New("sqlite: database schema is newer than this version of rostrum supports")

// busyTimeout is how long a connection waits for a lock another connection
// (in practice another process on the same file) holds before failing with
// SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is a store.Store in one SQLite database file.
type Store struct {
	w *sql.DB // exactly one connection; every write
	r *sql.DB // read-only connections
	// getResource is prepared once: GetResource is on the path of every
	// GetStage and CreateParticipantToken.
	getResource *sql.Stmt
}

var _ store.Store = (*Store)(nil)

// Open opens, creating it if needed, the database at path (a file system
// path, not a URI), applies pending schema migrations and returns the store.
func Open(path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.ContainsRune(path, '?') {
		// An in-memory database would be a different database on every
		// connection of the two pools; '?' would start the DSN's parameters.
		return nil, fmt.Errorf("sqlite: unsupported database path %q", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	ctx := context.Background()

	w, err := sql.Open("sqlite", dsn(abs, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := checkWAL(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}

	r, err := sql.Open("sqlite", dsn(abs, false))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	get, err := r.PrepareContext(ctx, getResourceQuery)
	if err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	return &Store{w: w, r: r, getResource: get}, nil
}

// dsn is the driver's data source name for the database file at path, for
// the write pool or the read pool.
func dsn(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	// Durability; see the package comment. synchronous is a per-connection
	// setting; both pools set it so that no connection (a closing reader
	// may checkpoint the WAL) syncs less than FULL. fullfsync matters only
	// on macOS, where fsync does not flush the drive's cache; elsewhere it
	// is a no-op.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "fullfsync(1)")
	if write {
		// journal_mode is persistent in the file; setting it on the write
		// connection, which Open opens first, is enough.
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return path + "?" + q.Encode()
}

// checkWAL fails unless the database is in WAL mode (SQLite silently keeps
// the old journal mode where WAL is impossible, e.g. some network file
// systems).
func checkWAL(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, not wal", mode)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	// The read pool first, so that the write connection is the last one
	// and checkpoints the WAL into the database file as it closes.
	return errors.Join(s.getResource.Close(), s.r.Close(), s.w.Close())
}

// querier is what *sql.Tx and *sql.DB have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs fn in a write transaction (BEGIN IMMEDIATE, on the single write
// connection) and commits it unless fn fails; fn's error is returned as is.
// A nil return means the transaction is committed and, synchronous=FULL,
// on disk.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback() // a no-op once committed
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

// read runs fn in a read transaction: one snapshot for all its statements.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// toMillis and fromMillis convert times to and from their stored form, unix
// milliseconds.
func toMillis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// now is the current time as it will read back.
func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// blob keeps a nil document from being stored as NULL.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// paged finishes a list query over rows ordered by seq: those after the
// page's cursor (seq > After ascending, seq < After descending) and
// Limit+1 of them, so that the caller can tell whether another page
// follows (all when Limit <= 0).
func paged(query string, args []any, p store.Page, descending bool) (string, []any) {
	if p.After > 0 {
		if descending {
			query += ` AND seq < ?`
		} else {
			query += ` AND seq > ?`
		}
		args = append(args, p.After)
	}
	if descending {
		query += ` ORDER BY seq DESC`
	} else {
		query += ` ORDER BY seq`
	}
	if p.Limit > 0 {
		query += ` LIMIT ?`
		args = append(args, p.Limit+1)
	}
	return query, args
}

// collect runs a query and scans each row into a new T.
func collect[T any](ctx context.Context, q querier, what, query string, args []any, scan func(*sql.Rows, *T) error) ([]*T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list %s: %w", what, err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v := new(T)
		if err := scan(rows, v); err != nil {
			return nil, fmt.Errorf("sqlite: scan %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list %s: %w", what, err)
	}
	return out, nil
}

func notFound(what string, key ...string) error {
	return fmt.Errorf("sqlite: %s %s: %w", what, strings.Join(key, " "), store.ErrNotFound)
}

// exists reports whether query, selecting at most one row, selects one.
func exists(ctx context.Context, q querier, query string, args ...any) (bool, error) {
	var one int
	err := q.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: %w", err)
	}
	return true, nil
}
