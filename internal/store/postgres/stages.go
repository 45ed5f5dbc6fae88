package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rostrum-dev/rostrum/internal/store"
)

// lockStage locks a stage's row until commit and reports whether it
// exists. Sessions and replicas are listed per stage: taking their Seq
// under this lock keeps Seq order commit order there (package comment).
// NO KEY UPDATE does not block the foreign-key checks of rows under the
// stage, only other writers of the stage.
func lockStage(ctx context.Context, tx pgx.Tx, stageARN string) (bool, error) {
	return exists(ctx, tx, `SELECT 1 FROM resources WHERE arn = $1 FOR NO KEY UPDATE`, stageARN)
}

// lockSession is lockStage for a session: participants and events are
// listed per session.
func lockSession(ctx context.Context, tx pgx.Tx, stageARN, sessionID string) (bool, error) {
	return exists(ctx, tx,
		`SELECT 1 FROM stage_sessions WHERE stage_arn = $1 AND session_id = $2 FOR NO KEY UPDATE`, stageARN, sessionID)
}

// StartStageSession implements store.Store. It returns ErrNotFound if the
// stage does not exist and ErrAlreadyExists if the session does.
func (s *Store) StartStageSession(ctx context.Context, ss *store.StageSession, outbox ...*store.OutboxEntry) error {
	var seq int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		ok, err := lockStage(ctx, tx, ss.StageARN)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("stage", ss.StageARN)
		}
		var end *int64
		if ss.EndTime != nil {
			e := toMillis(*ss.EndTime)
			end = &e
		}
		// The stage's lock makes the unique constraint the only way to
		// meet an existing session: no race can slip past it.
		err = tx.QueryRow(ctx, `
INSERT INTO stage_sessions (stage_arn, session_id, start_time, end_time, node_id)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (stage_arn, session_id) DO NOTHING
RETURNING seq`,
			ss.StageARN, ss.SessionID, toMillis(ss.StartTime), end, ss.NodeID).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: stage session %s %s: %w", ss.StageARN, ss.SessionID, store.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: insert stage session: %w", err)
		}
		if _, err := tx.Exec(ctx,
			`UPDATE resources SET active_session_id = $1 WHERE arn = $2`, ss.SessionID, ss.StageARN); err != nil {
			return fmt.Errorf("postgres: set active session: %w", err)
		}
		_, err = insertOutbox(ctx, tx, outbox)
		return err
	})
	if err != nil {
		return err
	}
	ss.Seq = seq
	return nil
}

// EndStageSession implements store.Store.
func (s *Store) EndStageSession(ctx context.Context, stageARN, sessionID string, end time.Time, outbox ...*store.OutboxEntry) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx,
			`UPDATE stage_sessions SET end_time = $1 WHERE stage_arn = $2 AND session_id = $3`,
			toMillis(end), stageARN, sessionID)
		if err != nil {
			return fmt.Errorf("postgres: end stage session: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return notFound("stage session", stageARN, sessionID)
		}
		if _, err := tx.Exec(ctx,
			`UPDATE resources SET active_session_id = '' WHERE arn = $1 AND active_session_id = $2`,
			stageARN, sessionID); err != nil {
			return fmt.Errorf("postgres: clear active session: %w", err)
		}
		_, err = insertOutbox(ctx, tx, outbox)
		return err
	})
}

const sessionColumns = `seq, stage_arn, session_id, start_time, end_time, node_id`

func scanSession(row pgx.Row, x *store.StageSession) error {
	var start int64
	var end *int64
	if err := row.Scan(&x.Seq, &x.StageARN, &x.SessionID, &start, &end, &x.NodeID); err != nil {
		return err
	}
	x.StartTime = fromMillis(start)
	if end != nil {
		t := fromMillis(*end)
		x.EndTime = &t
	}
	return nil
}

// GetStageSession implements store.Store.
func (s *Store) GetStageSession(ctx context.Context, stageARN, sessionID string) (*store.StageSession, error) {
	ss, err := collect(ctx, s.pool, "stage sessions", `SELECT `+sessionColumns+` FROM stage_sessions
WHERE stage_arn = $1 AND session_id = $2`, []any{stageARN, sessionID}, scanSession)
	if err != nil {
		return nil, err
	}
	if len(ss) == 0 {
		return nil, notFound("stage session", stageARN, sessionID)
	}
	return ss[0], nil
}

// ListStageSessions implements store.Store: newest first, Page.After is the
// Seq of the last session of the previous page (the next page's are smaller).
func (s *Store) ListStageSessions(ctx context.Context, stageARN string, p store.Page) ([]*store.StageSession, error) {
	a := args{stageARN}
	query := paged(`SELECT `+sessionColumns+` FROM stage_sessions WHERE stage_arn = $1`, &a, p, true)
	return collect(ctx, s.pool, "stage sessions", query, a, scanSession)
}

// PutParticipant implements store.Store. It returns ErrNotFound if the
// session does not exist.
func (s *Store) PutParticipant(ctx context.Context, p *store.Participant) error {
	var seq int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		ok, err := lockSession(ctx, tx, p.StageARN, p.SessionID)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("stage session", p.StageARN, p.SessionID)
		}
		seq, err = putParticipant(ctx, tx, p)
		return err
	})
	if err != nil {
		return err
	}
	p.Seq = seq
	return nil
}

// putParticipant inserts or replaces a participant row in tx and returns
// its Seq. The caller holds the session's lock.
func putParticipant(ctx context.Context, tx pgx.Tx, p *store.Participant) (int64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `
INSERT INTO participants (stage_arn, session_id, participant_id, user_id, state, published,
	recording_state, first_join_time, doc)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (stage_arn, session_id, participant_id) DO UPDATE SET
	user_id = excluded.user_id,
	state = excluded.state,
	published = excluded.published,
	recording_state = excluded.recording_state,
	first_join_time = excluded.first_join_time,
	doc = excluded.doc
RETURNING seq`,
		p.StageARN, p.SessionID, p.ParticipantID, p.UserID, p.State, p.Published,
		p.RecordingState, toMillis(p.FirstJoinTime), blob(p.Doc)).Scan(&seq)
	if pgCode(err) == foreignKeyViolation {
		return 0, notFound("stage session", p.StageARN, p.SessionID)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: put participant: %w", err)
	}
	return seq, nil
}

const participantColumns = `seq, stage_arn, session_id, participant_id, user_id, state, published,
	recording_state, first_join_time, doc`

func scanParticipant(row pgx.Row, p *store.Participant) error {
	var firstJoin int64
	if err := row.Scan(&p.Seq, &p.StageARN, &p.SessionID, &p.ParticipantID, &p.UserID, &p.State,
		&p.Published, &p.RecordingState, &firstJoin, &p.Doc); err != nil {
		return err
	}
	p.FirstJoinTime = fromMillis(firstJoin)
	return nil
}

// GetParticipant implements store.Store.
func (s *Store) GetParticipant(ctx context.Context, stageARN, sessionID, participantID string) (*store.Participant, error) {
	ps, err := collect(ctx, s.pool, "participants", `SELECT `+participantColumns+` FROM participants
WHERE stage_arn = $1 AND session_id = $2 AND participant_id = $3`, []any{stageARN, sessionID, participantID}, scanParticipant)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, notFound("participant", stageARN, sessionID, participantID)
	}
	return ps[0], nil
}

// ListParticipants implements store.Store. Filters that are set combine with
// AND.
func (s *Store) ListParticipants(ctx context.Context, q store.ParticipantQuery) ([]*store.Participant, error) {
	var a args
	var b strings.Builder
	b.WriteString(`SELECT ` + participantColumns + ` FROM participants WHERE stage_arn = ` + a.add(q.StageARN) +
		` AND session_id = ` + a.add(q.SessionID))
	if q.UserID != nil {
		b.WriteString(` AND user_id = ` + a.add(*q.UserID))
	}
	if q.Published != nil {
		b.WriteString(` AND published = ` + a.add(*q.Published))
	}
	if q.State != nil {
		b.WriteString(` AND state = ` + a.add(*q.State))
	}
	if q.RecordingState != nil {
		b.WriteString(` AND recording_state = ` + a.add(*q.RecordingState))
	}
	query := paged(b.String(), &a, q.Page, false)
	return collect(ctx, s.pool, "participants", query, a, scanParticipant)
}

// AddParticipantEvent implements store.Store. It returns ErrNotFound if the
// session does not exist.
func (s *Store) AddParticipantEvent(ctx context.Context, e *store.ParticipantEvent, outbox ...*store.OutboxEntry) error {
	var seq int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		ok, err := lockSession(ctx, tx, e.StageARN, e.SessionID)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("stage session", e.StageARN, e.SessionID)
		}
		if seq, err = addParticipantEvent(ctx, tx, e); err != nil {
			return err
		}
		_, err = insertOutbox(ctx, tx, outbox)
		return err
	})
	if err != nil {
		return err
	}
	e.Seq = seq
	return nil
}

// addParticipantEvent appends an event row in tx and returns its Seq. The
// caller holds the session's lock.
func addParticipantEvent(ctx context.Context, tx pgx.Tx, e *store.ParticipantEvent) (int64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `
INSERT INTO participant_events (stage_arn, session_id, participant_id, event_time, doc)
VALUES ($1, $2, $3, $4, $5)
RETURNING seq`,
		e.StageARN, e.SessionID, e.ParticipantID, toMillis(e.EventTime), blob(e.Doc)).Scan(&seq)
	if pgCode(err) == foreignKeyViolation {
		return 0, notFound("stage session", e.StageARN, e.SessionID)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: add participant event: %w", err)
	}
	return seq, nil
}

const eventColumns = `seq, stage_arn, session_id, participant_id, event_time, doc`

func scanEvent(row pgx.Row, e *store.ParticipantEvent) error {
	var at int64
	err := row.Scan(&e.Seq, &e.StageARN, &e.SessionID, &e.ParticipantID, &at, &e.Doc)
	e.EventTime = fromMillis(at)
	return err
}

// ListParticipantEvents implements store.Store.
func (s *Store) ListParticipantEvents(ctx context.Context, stageARN, sessionID, participantID string, p store.Page) ([]*store.ParticipantEvent, error) {
	a := args{stageARN, sessionID, participantID}
	query := paged(`SELECT `+eventColumns+` FROM participant_events
WHERE stage_arn = $1 AND session_id = $2 AND participant_id = $3`, &a, p, false)
	return collect(ctx, s.pool, "participant events", query, a, scanEvent)
}

// PutParticipantReplica implements store.Store: an upsert keyed by source
// stage, participant and destination stage, keeping Seq. It returns
// ErrNotFound if the source stage does not exist.
func (s *Store) PutParticipantReplica(ctx context.Context, r *store.ParticipantReplica) error {
	var seq int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		ok, err := lockStage(ctx, tx, r.SourceStageARN)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("stage", r.SourceStageARN)
		}
		seq, err = putReplica(ctx, tx, r)
		return err
	})
	if err != nil {
		return err
	}
	r.Seq = seq
	return nil
}

// putReplica upserts a replication record in tx and returns its Seq.
func putReplica(ctx context.Context, tx pgx.Tx, r *store.ParticipantReplica) (int64, error) {
	var seq int64
	if err := tx.QueryRow(ctx, `
INSERT INTO participant_replicas (source_stage_arn, participant_id, destination_stage_arn, state, doc)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (source_stage_arn, participant_id, destination_stage_arn) DO UPDATE SET
	state = excluded.state,
	doc = excluded.doc
RETURNING seq`,
		r.SourceStageARN, r.ParticipantID, r.DestinationStageARN, r.State, blob(r.Doc)).Scan(&seq); err != nil {
		return 0, fmt.Errorf("postgres: put participant replica: %w", err)
	}
	return seq, nil
}

// ListParticipantReplicas implements store.Store, in Seq order.
func (s *Store) ListParticipantReplicas(ctx context.Context, sourceStageARN, participantID string, p store.Page) ([]*store.ParticipantReplica, error) {
	a := args{sourceStageARN, participantID}
	query := paged(`SELECT seq, source_stage_arn, participant_id, destination_stage_arn, state, doc
FROM participant_replicas WHERE source_stage_arn = $1 AND participant_id = $2`, &a, p, false)
	return collect(ctx, s.pool, "participant replicas", query, a, func(row pgx.Row, r *store.ParticipantReplica) error {
		return row.Scan(&r.Seq, &r.SourceStageARN, &r.ParticipantID, &r.DestinationStageARN, &r.State, &r.Doc)
	})
}

// RevokeParticipant implements store.Store. Revoking again is a no-op (the
// first time is kept). It returns ErrNotFound if the stage does not exist:
// the foreign key checks that in the insert's own statement, so a stage
// deleted meanwhile cannot be missed.
func (s *Store) RevokeParticipant(ctx context.Context, stageARN, participantID string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `
INSERT INTO participant_revocations (stage_arn, participant_id, revoked_at) VALUES ($1, $2, $3)
ON CONFLICT (stage_arn, participant_id) DO NOTHING`,
		stageARN, participantID, toMillis(at))
	if pgCode(err) == foreignKeyViolation {
		return notFound("stage", stageARN)
	}
	if err != nil {
		return fmt.Errorf("postgres: revoke participant: %w", err)
	}
	return nil
}

// IsParticipantRevoked implements store.Store.
func (s *Store) IsParticipantRevoked(ctx context.Context, stageARN, participantID string) (bool, error) {
	return exists(ctx, s.pool,
		`SELECT 1 FROM participant_revocations WHERE stage_arn = $1 AND participant_id = $2`,
		stageARN, participantID)
}

// GetSetting implements store.Store.
func (s *Store) GetSetting(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("setting", key)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get setting: %w", err)
	}
	return v, nil
}

// PutSettingIfAbsent implements store.Store. Of concurrent first writers,
// the insert of one wins and the others' wait for its commit and do
// nothing; the select that follows, a statement of its own, sees the
// winner's value.
func (s *Store) PutSettingIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error) {
	var v []byte
	err := s.write(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx,
			`INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
			key, blob(value)); err != nil {
			return fmt.Errorf("postgres: put setting: %w", err)
		}
		if err := tx.QueryRow(ctx, `SELECT value FROM settings WHERE name = $1`, key).Scan(&v); err != nil {
			return fmt.Errorf("postgres: put setting: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}
