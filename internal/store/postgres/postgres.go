// Package postgres is the PostgreSQL implementation of store.Store, through
// pgx (a pgxpool of connections), for deployments whose state lives in a
// PostgreSQL server: `rostrum serve --database-url postgres://…`. It
// stores what the sqlite store stores, in the same tables and columns
// (schema.go), and passes the same conformance suite (storetest).
//
// # Concurrency: several writers on several connections
//
// Unlike sqlite, whose one write connection serializes every write,
// PostgreSQL runs transactions of many connections (and, later, many
// nodes) at once. Transactions run at READ COMMITTED, and each invariant
// that sqlite gets from serialized writes is kept by a lock that covers
// exactly what it needs, held until commit:
//
//   - Quotas. CreateResource counts a kind's resources of an owner and
//     inserts; two creates that both count 4 of a quota of 5 would both
//     insert. Every create first takes a transaction-level advisory lock
//     on (kind, owner), so the count and insert of one create are over
//     before the next counts. SERIALIZABLE would also catch this, but by
//     failing one transaction, which must then be retried; the lock makes
//     the second create wait a few milliseconds instead, and it only
//     serializes creates of one kind and owner.
//   - Idempotency. The ARN, a session id within its stage, a participant
//     within its session and the replica and revocation keys are unique
//     constraints; inserts that lose a race to the same key get
//     ErrAlreadyExists (23505) or update the existing row (ON CONFLICT),
//     and PutSettingIfAbsent returns what the winner stored.
//   - Pagination. Lists page by Seq ("after the last Seq I saw"), which
//     is exact only if rows become visible in Seq order within what one
//     list covers. A sequence alone does not promise that: a transaction
//     may take Seq 10, another Seq 11 and commit first, and a reader that
//     saw 11 then pages past 10 for ever (or, in the outbox, delivers a
//     partition's 11 before its 10). So every insert of a row with a Seq
//     first locks the scope it is listed in, and takes its Seq under that
//     lock: the (kind, owner) advisory lock for resources, the stage's row
//     for its sessions and replicas, the session's row for its
//     participants and events, and an advisory lock on (sink, partition)
//     for outbox entries. Within one scope, Seq order is then commit order.
//   - Read-modify-write (UpdateResource, DeleteResource, CloseNodeSessions)
//     locks the rows it reads (SELECT … FOR UPDATE), so concurrent updates
//     apply one after the other and a node's heartbeat cannot slip between
//     CloseNodeSessions' staleness check and its writes.
//
// Row locks are taken before advisory outbox locks, and outbox locks in
// sorted order, so these locks do not deadlock one another; should
// PostgreSQL still report a deadlock or a serialization failure, the
// transaction is retried (a callback may then run more than once).
//
// A read that spans several statements (PendingEvents) runs in one
// REPEATABLE READ, READ ONLY transaction: one snapshot. Resources are
// read with their references in one statement.
//
// # Durability
//
// A write is acknowledged once PostgreSQL has committed it: with the
// default synchronous_commit=on that means flushed to its WAL. Open sets
// synchronous_commit=on on its connections unless the URL says otherwise,
// because store.Store promises that an acknowledged write is durable and a
// server-wide "off" would quietly break that.
//
// # Migrations
//
// Open applies pending migrations (schema.go) under an advisory lock, so
// that several nodes starting together on one database migrate it once.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rostrum-dev/rostrum/internal/store"
)

// ErrSchemaTooNew is returned (wrapped) by Open when the database was last
// migrated by a newer Rostrum than this one.
var ErrSchemaTooNew = errors.New("postgres: database schema is newer than this version of rostrum supports")

// Advisory lock namespaces: the first key of pg_advisory_[xact_]lock(int,
// int), so that the store's locks never collide with one another (the
// second key is a hash, which may collide within a namespace: that only
// makes two unrelated writers wait for each other).
const (
	lockMigrations = 1 // second key 0
	lockKindOwner  = 2 // hashtext(kind, owner): quota counts, resource Seq order
	lockPartition  = 3 // hashtext(sink, partition): outbox Seq order
)

// Store is a store.Store in a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// IsURL reports whether s is a PostgreSQL connection URL.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Open connects to the database at url (postgres://user:password@host:port/db?…,
// any libpq URL parameter), applies pending schema migrations and returns
// the store.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	if !IsURL(rawURL) {
		return nil, fmt.Errorf("postgres: database URL must start with postgres:// or postgresql://")
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error repeats the URL, password included.
		return nil, errors.New("postgres: the database URL does not parse")
	}
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, fmt.Errorf("postgres: database URL: %w", err)
	}
	if u.Query().Get("pool_max_conns") == "" {
		// Enough for the API's concurrent requests with the event bus and
		// housekeeping beside them; each connection is a server process,
		// so not many more.
		cfg.MaxConns = int32(max(8, 2*runtime.GOMAXPROCS(0)))
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["synchronous_commit"]; !ok {
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		// Redacted: the URL without its password.
		return nil, fmt.Errorf("postgres: open %s: %w", u.Redacted(), err)
	}
	return &Store{pool: pool}, nil
}

// Close closes the pool's connections.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// querier is what pgx.Tx, *pgxpool.Pool and *pgxpool.Conn have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// maxAttempts bounds the retries of a transaction that PostgreSQL aborted
// for a deadlock or serialization failure.
const maxAttempts = 5

// write runs fn in a READ COMMITTED transaction and commits it unless fn
// fails; fn's error is returned as is. A nil return means committed.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.inTx(ctx, pgx.TxOptions{}, fn)
}

// read runs fn in a REPEATABLE READ, READ ONLY transaction: one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

func (s *Store) inTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tryTx(ctx, opts, fn)
		if err == nil || attempt == maxAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

func (s *Store) tryTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // a no-op once committed
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	return nil
}

// retryable: PostgreSQL aborted the transaction so that another could go
// on; running it again is safe.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// lockKey takes a transaction-level advisory lock on (namespace, hash of
// parts), held until the transaction ends.
func lockKey(ctx context.Context, tx pgx.Tx, namespace int32, parts ...string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`,
		namespace, strings.Join(parts, "\n")); err != nil {
		return fmt.Errorf("postgres: lock: %w", err)
	}
	return nil
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

// args collects a query's parameters and names each one ($1, $2, …).
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// paged finishes a list query over rows ordered by seq: those after the
// page's cursor (seq > After ascending, seq < After descending) and
// Limit+1 of them, so that the caller can tell whether another page
// follows (all when Limit <= 0).
func paged(query string, a *args, p store.Page, descending bool) string {
	if p.After > 0 {
		if descending {
			query += ` AND seq < ` + a.add(p.After)
		} else {
			query += ` AND seq > ` + a.add(p.After)
		}
	}
	if descending {
		query += ` ORDER BY seq DESC`
	} else {
		query += ` ORDER BY seq`
	}
	if p.Limit > 0 {
		query += ` LIMIT ` + a.add(p.Limit+1)
	}
	return query
}

// collect runs a query and scans each row into a new T.
func collect[T any](ctx context.Context, q querier, what, query string, a []any, scan func(pgx.Row, *T) error) ([]*T, error) {
	rows, err := q.Query(ctx, query, a...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list %s: %w", what, err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v := new(T)
		if err := scan(rows, v); err != nil {
			return nil, fmt.Errorf("postgres: scan %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: list %s: %w", what, err)
	}
	return out, nil
}

func notFound(what string, key ...string) error {
	return fmt.Errorf("postgres: %s %s: %w", what, strings.Join(key, " "), store.ErrNotFound)
}

// exists reports whether query, selecting at most one row, selects one.
func exists(ctx context.Context, q querier, query string, a ...any) (bool, error) {
	var one int
	err := q.QueryRow(ctx, query, a...).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("postgres: %w", err)
	}
	return true, nil
}

// sortedUnique returns the distinct keys in order (lock order).
func sortedUnique(keys [][2]string) [][2]string {
	slices.SortFunc(keys, func(a, b [2]string) int {
		if c := strings.Compare(a[0], b[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], b[1])
	})
	return slices.Compact(keys)
}
