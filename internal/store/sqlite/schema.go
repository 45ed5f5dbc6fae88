package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are the schema's versions: migrations[i] upgrades version i to
// version i+1. Append only; never edit a migration that has shipped.
//
// Every sequence column is INTEGER PRIMARY KEY AUTOINCREMENT so that a value
// is never reused, even after the newest row is deleted (plain rowids would
// reuse it), which keeps "Seq after X" pagination stable; in PostgreSQL it is
// a BIGINT identity column. Times are unix milliseconds (see the package
// comment).
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE resources (
	seq               INTEGER PRIMARY KEY AUTOINCREMENT,
	arn               TEXT    NOT NULL UNIQUE,
	kind              TEXT    NOT NULL,
	owner             TEXT    NOT NULL,
	state             TEXT    NOT NULL DEFAULT '',
	active_session_id TEXT    NOT NULL DEFAULT '',
	doc               BLOB    NOT NULL,
	created_at        INTEGER NOT NULL
);
-- ListResources, CountResources and the quota count; with and without a
-- state filter.
CREATE INDEX resources_kind_owner_seq ON resources (kind, owner, seq);
CREATE INDEX resources_kind_owner_state_seq ON resources (kind, owner, state, seq);

-- Resource.Refs, in order (pos), duplicates allowed.
CREATE TABLE resource_refs (
	arn TEXT    NOT NULL REFERENCES resources (arn) ON DELETE CASCADE,
	pos INTEGER NOT NULL,
	ref TEXT    NOT NULL,
	PRIMARY KEY (arn, pos)
);
-- Referrers of a resource (DeleteResource) and ListResources' Ref filter.
CREATE INDEX resource_refs_ref ON resource_refs (ref, arn);

CREATE TABLE stage_sessions (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	stage_arn  TEXT    NOT NULL REFERENCES resources (arn) ON DELETE CASCADE,
	session_id TEXT    NOT NULL,
	start_time INTEGER NOT NULL,
	end_time   INTEGER,
	UNIQUE (stage_arn, session_id)
);
CREATE INDEX stage_sessions_stage_seq ON stage_sessions (stage_arn, seq);

CREATE TABLE participants (
	seq             INTEGER PRIMARY KEY AUTOINCREMENT,
	stage_arn       TEXT    NOT NULL,
	session_id      TEXT    NOT NULL,
	participant_id  TEXT    NOT NULL,
	user_id         TEXT    NOT NULL DEFAULT '',
	state           TEXT    NOT NULL DEFAULT '',
	published       INTEGER NOT NULL DEFAULT 0,
	recording_state TEXT    NOT NULL DEFAULT '',
	first_join_time INTEGER NOT NULL,
	doc             BLOB    NOT NULL,
	UNIQUE (stage_arn, session_id, participant_id),
	FOREIGN KEY (stage_arn, session_id)
		REFERENCES stage_sessions (stage_arn, session_id) ON DELETE CASCADE
);
-- ListParticipants: unfiltered and with each of its filters.
CREATE INDEX participants_session_seq ON participants (stage_arn, session_id, seq);
CREATE INDEX participants_user_seq ON participants (stage_arn, session_id, user_id, seq);
CREATE INDEX participants_published_seq ON participants (stage_arn, session_id, published, seq);
CREATE INDEX participants_state_seq ON participants (stage_arn, session_id, state, seq);
CREATE INDEX participants_recording_seq ON participants (stage_arn, session_id, recording_state, seq);

CREATE TABLE participant_events (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	stage_arn      TEXT    NOT NULL,
	session_id     TEXT    NOT NULL,
	participant_id TEXT    NOT NULL,
	event_time     INTEGER NOT NULL,
	doc            BLOB    NOT NULL,
	FOREIGN KEY (stage_arn, session_id)
		REFERENCES stage_sessions (stage_arn, session_id) ON DELETE CASCADE
);
CREATE INDEX participant_events_participant_seq
	ON participant_events (stage_arn, session_id, participant_id, seq);

CREATE TABLE participant_replicas (
	seq                   INTEGER PRIMARY KEY AUTOINCREMENT,
	source_stage_arn      TEXT NOT NULL REFERENCES resources (arn) ON DELETE CASCADE,
	participant_id        TEXT NOT NULL,
	destination_stage_arn TEXT NOT NULL,
	state                 TEXT NOT NULL DEFAULT '',
	doc                   BLOB NOT NULL,
	UNIQUE (source_stage_arn, participant_id, destination_stage_arn)
);
CREATE INDEX participant_replicas_participant_seq
	ON participant_replicas (source_stage_arn, participant_id, seq);

CREATE TABLE participant_revocations (
	stage_arn      TEXT    NOT NULL REFERENCES resources (arn) ON DELETE CASCADE,
	participant_id TEXT    NOT NULL,
	revoked_at     INTEGER NOT NULL,
	PRIMARY KEY (stage_arn, participant_id)
);

CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
`,
	// 2: the event outbox (store.OutboxEntry). No foreign keys: events
	// outlive their stage.
	`
CREATE TABLE event_outbox (
	seq           INTEGER PRIMARY KEY AUTOINCREMENT,
	sink          TEXT    NOT NULL,
	partition_key TEXT    NOT NULL,
	event_id      TEXT    NOT NULL,
	doc           BLOB    NOT NULL,
	attempts      INTEGER NOT NULL DEFAULT 0,
	next_attempt  INTEGER NOT NULL,
	last_error    TEXT    NOT NULL DEFAULT '',
	created_at    INTEGER NOT NULL
);
-- PendingEvents (each partition's oldest entry of a sink) and CountEvents.
CREATE INDEX event_outbox_sink_partition_seq ON event_outbox (sink, partition_key, seq);
`,
	// 3: session ownership, node heartbeats (store.Node) and what the
	// retention sweep looks sessions up by. Sessions from before have no
	// node ('').
	`
ALTER TABLE stage_sessions ADD COLUMN node_id TEXT NOT NULL DEFAULT '';
-- CloseNodeSessions: a node's active sessions.
CREATE INDEX stage_sessions_node_active ON stage_sessions (node_id, seq) WHERE end_time IS NULL;
-- DeleteEndedSessions: ended sessions by end time.
CREATE INDEX stage_sessions_end_time ON stage_sessions (end_time) WHERE end_time IS NOT NULL;

CREATE TABLE nodes (
	node_id   TEXT    PRIMARY KEY,
	heartbeat INTEGER NOT NULL
);
`,
	// 4: compositions: the node that runs a resource (store.Resource.Node)
	// and the idempotency token it was created with, unique per kind and
	// owner among the resources that exist.
	`
ALTER TABLE resources ADD COLUMN node TEXT NOT NULL DEFAULT '';
ALTER TABLE resources ADD COLUMN client_token TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX resources_client_token ON resources (kind, owner, client_token) WHERE client_token <> '';
-- ScanResources: a kind's resources in some states, of one node or any.
CREATE INDEX resources_kind_state_node_seq ON resources (kind, state, node, seq);
`,
}

// schemaVersion is the version this build migrates databases to.
func schemaVersion() int { return len(migrations) }

// migrate brings the database's schema up to schemaVersion, applying every
// pending migration in one transaction: a failure leaves the database as it
// was, and two processes opening a new database at once cannot both migrate
// it (the transaction begins IMMEDIATE, holding the write lock).
func migrate(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at INTEGER NOT NULL
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
	if cur == schemaVersion() {
		return nil
	}
	for v := cur + 1; v <= schemaVersion(); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
			v, toMillis(now())); err != nil {
			return fmt.Errorf("migrate to version %d: %w", v, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// currentVersion is the database's schema version, 0 for a new database.
func currentVersion(ctx context.Context, q querier) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}
