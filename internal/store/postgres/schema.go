package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations are the schema's versions: migrations[i] upgrades version i to
// version i+1. Append only; never edit a migration that has shipped. They
// follow the sqlite store's versions one for one (the same tables and
// columns, in PostgreSQL's types), so that a change to the schema is one
// new version in each.
//
// Sequence columns are identity columns: their values come from a
// sequence and are never reused, which keeps "Seq after X" pagination
// stable. Times are BIGINT unix milliseconds in UTC, as in sqlite.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE resources (
	seq               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	arn               TEXT   NOT NULL UNIQUE,
	kind              TEXT   NOT NULL,
	owner             TEXT   NOT NULL,
	state             TEXT   NOT NULL DEFAULT '',
	active_session_id TEXT   NOT NULL DEFAULT '',
	doc               BYTEA  NOT NULL,
	created_at        BIGINT NOT NULL
);
CREATE INDEX resources_kind_owner_seq ON resources (kind, owner, seq);
CREATE INDEX resources_kind_owner_state_seq ON resources (kind, owner, state, seq);

CREATE TABLE resource_refs (
	arn TEXT    NOT NULL REFERENCES resources (arn) ON DELETE CASCADE,
	pos INTEGER NOT NULL,
	ref TEXT    NOT NULL,
	PRIMARY KEY (arn, pos)
);
CREATE INDEX resource_refs_ref ON resource_refs (ref, arn);

CREATE TABLE stage_sessions (
	seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	stage_arn  TEXT   NOT NULL REFERENCES resources (arn) ON DELETE CASCADE,
	session_id TEXT   NOT NULL,
	start_time BIGINT NOT NULL,
	end_time   BIGINT,
	UNIQUE (stage_arn, session_id)
);
CREATE INDEX stage_sessions_stage_seq ON stage_sessions (stage_arn, seq);

CREATE TABLE participants (
	seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	stage_arn       TEXT    NOT NULL,
	session_id      TEXT    NOT NULL,
	participant_id  TEXT    NOT NULL,
	user_id         TEXT    NOT NULL DEFAULT '',
	state           TEXT    NOT NULL DEFAULT '',
	published       BOOLEAN NOT NULL DEFAULT false,
	recording_state TEXT    NOT NULL DEFAULT '',
	first_join_time BIGINT  NOT NULL,
	doc             BYTEA   NOT NULL,
	UNIQUE (stage_arn, session_id, participant_id),
	FOREIGN KEY (stage_arn, session_id)
		REFERENCES stage_sessions (stage_arn, session_id) ON DELETE CASCADE
);
CREATE INDEX participants_session_seq ON participants (stage_arn, session_id, seq);
CREATE INDEX participants_user_seq ON participants (stage_arn, session_id, user_id, seq);
CREATE INDEX participants_published_seq ON participants (stage_arn, session_id, published, seq);
CREATE INDEX participants_state_seq ON participants (stage_arn, session_id, state, seq);
CREATE INDEX participants_recording_seq ON participants (stage_arn, session_id, recording_state, seq);

CREATE TABLE participant_events (
	seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	stage_arn      TEXT   NOT NULL,
	session_id     TEXT   NOT NULL,
	participant_id TEXT   NOT NULL,
	event_time     BIGINT NOT NULL,
	doc            BYTEA  NOT NULL,
	FOREIGN KEY (stage_arn, session_id)
		REFERENCES stage_sessions (stage_arn, session_id) ON DELETE CASCADE
);
CREATE INDEX participant_events_participant_seq
	ON participant_events (stage_arn, session_id, participant_id, seq);

CREATE TABLE participant_replicas (
	seq                   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	source_stage_arn      TEXT   NOT NULL REFERENCES resources (arn) ON DELETE CASCADE,
	participant_id        TEXT   NOT NULL,
	destination_stage_arn TEXT   NOT NULL,
	state                 TEXT   NOT NULL DEFAULT '',
	doc                   BYTEA  NOT NULL,
	UNIQUE (source_stage_arn, participant_id, destination_stage_arn)
);
CREATE INDEX participant_replicas_participant_seq
	ON participant_replicas (source_stage_arn, participant_id, seq);

CREATE TABLE participant_revocations (
	stage_arn      TEXT   NOT NULL REFERENCES resources (arn) ON DELETE CASCADE,
	participant_id TEXT   NOT NULL,
	revoked_at     BIGINT NOT NULL,
	PRIMARY KEY (stage_arn, participant_id)
);

CREATE TABLE settings (
	name  TEXT  PRIMARY KEY,
	value BYTEA NOT NULL
);
`,
	// 2: the event outbox (store.OutboxEntry). No foreign keys: events
	// outlive their stage.
	`
CREATE TABLE event_outbox (
	seq           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	sink          TEXT    NOT NULL,
	partition_key TEXT    NOT NULL,
	event_id      TEXT    NOT NULL,
	doc           BYTEA   NOT NULL,
	attempts      INTEGER NOT NULL DEFAULT 0,
	next_attempt  BIGINT  NOT NULL,
	last_error    TEXT    NOT NULL DEFAULT '',
	created_at    BIGINT  NOT NULL
);
CREATE INDEX event_outbox_sink_partition_seq ON event_outbox (sink, partition_key, seq);
`,
	// 3: session ownership, node heartbeats and the retention sweep's
	// index.
	`
ALTER TABLE stage_sessions ADD COLUMN node_id TEXT NOT NULL DEFAULT '';
CREATE INDEX stage_sessions_node_active ON stage_sessions (node_id, seq) WHERE end_time IS NULL;
CREATE INDEX stage_sessions_end_time ON stage_sessions (end_time) WHERE end_time IS NOT NULL;

CREATE TABLE nodes (
	node_id   TEXT   PRIMARY KEY,
	heartbeat BIGINT NOT NULL
);
`,
	// 4: compositions: the node that runs a resource and the idempotency
	// token it was created with, unique per kind and owner among the
	// resources that exist.
	`
ALTER TABLE resources ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE resources ADD COLUMN client_token TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX resources_client_token ON resources (kind, owner, client_token) WHERE client_token <> '';
CREATE INDEX resources_kind_state_node_seq ON resources (kind, state, node, seq);
`,
}

// schemaVersion is the version this build migrates databases to.
func schemaVersion() int { return len(migrations) }

// migrate brings the database's schema up to schemaVersion. Several nodes
// may start at once on a new or older database: each takes a session-level
// advisory lock on one connection first, so that one migrates while the
// others wait and then find nothing to do. (Without it two nodes would
// both see version 0 and both create the tables; one would fail.) The
// lock is the connection's: if the process dies mid-migration the
// connection closes and the lock is released, and the migration's
// transaction, never committed, leaves the database as it was.
func migrate(ctx context.Context, pool *pgxpool.Pool) (err error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1, 0)`, lockMigrations); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		// A connection whose unlock failed must not go back to the pool
		// holding the lock.
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, 0)`, lockMigrations); uerr != nil {
			conn.Conn().Close(context.WithoutCancel(ctx))
			err = errors.Join(err, fmt.Errorf("migrate: unlock: %w", uerr))
		}
	}()
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at BIGINT  NOT NULL
)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		cur, err := currentVersion(ctx, tx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if cur > schemaVersion() {
			return fmt.Errorf("%w: database is at version %d, this build knows versions up to %d",
				ErrSchemaTooNew, cur, schemaVersion())
		}
		for v := cur + 1; v <= schemaVersion(); v++ {
			if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("migrate to version %d: %w", v, err)
			}
			if _, err := tx.Exec(ctx,
				`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`,
				v, toMillis(now())); err != nil {
				return fmt.Errorf("migrate to version %d: %w", v, err)
			}
		}
		return nil
	})
}

// currentVersion is the database's schema version, 0 for a new database.
func currentVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
