package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store"
)

// stageExists and sessionExists back the ErrNotFound of the methods that
// add rows under a stage or session; the foreign keys would reject the rows
// anyway, but with an error that says less.
func stageExists(ctx context.Context, q querier, stageARN string) (bool, error) {
	return exists(ctx, q, `SELECT 1 FROM resources WHERE arn = ?`, stageARN)
}

func sessionExists(ctx context.Context, q querier, stageARN, sessionID string) (bool, error) {
	return exists(ctx, q,
		`SELECT 1 FROM stage_sessions WHERE stage_arn = ? AND session_id = ?`, stageARN, sessionID)
}

// StartStageSession implements store.Store. It returns ErrNotFound if the
// stage does not exist and ErrAlreadyExists if the session does.
func (s *Store) StartStageSession(ctx context.Context, ss *store.StageSession, outbox ...*store.OutboxEntry) error {
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		ok, err := stageExists(ctx, tx, ss.StageARN)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("stage", ss.StageARN)
		}
		dup, err := sessionExists(ctx, tx, ss.StageARN, ss.SessionID)
		if err != nil {
			return err
		}
		if dup {
			return fmt.Errorf("sqlite: stage session %s %s: %w", ss.StageARN, ss.SessionID, store.ErrAlreadyExists)
		}
		var end any
		if ss.EndTime != nil {
			end = toMillis(*ss.EndTime)
		}
		if err := tx.QueryRowContext(ctx, `
INSERT INTO stage_sessions (stage_arn, session_id, start_time, end_time, node_id)
VALUES (?, ?, ?, ?, ?)
RETURNING seq`,
			ss.StageARN, ss.SessionID, toMillis(ss.StartTime), end, ss.NodeID).Scan(&seq); err != nil {
			return fmt.Errorf("sqlite: insert stage session: %w", err)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE resources SET active_session_id = ? WHERE arn = ?`, ss.SessionID, ss.StageARN); err != nil {
			return fmt.Errorf("sqlite: set active session: %w", err)
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
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE stage_sessions SET end_time = ? WHERE stage_arn = ? AND session_id = ?`,
			toMillis(end), stageARN, sessionID)
		if err != nil {
			return fmt.Errorf("sqlite: end stage session: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: end stage session: %w", err)
		} else if n == 0 {
			return notFound("stage session", stageARN, sessionID)
		}
		if _, err := tx.ExecContext(ctx,
			`UPDATE resources SET active_session_id = '' WHERE arn = ? AND active_session_id = ?`,
			stageARN, sessionID); err != nil {
			return fmt.Errorf("sqlite: clear active session: %w", err)
		}
		_, err = insertOutbox(ctx, tx, outbox)
		return err
	})
}

const sessionColumns = `seq, stage_arn, session_id, start_time, end_time, node_id`

// GetStageSession implements store.Store.
func (s *Store) GetStageSession(ctx context.Context, stageARN, sessionID string) (*store.StageSession, error) {
	ss, err := querySessions(ctx, s.r, `SELECT `+sessionColumns+` FROM stage_sessions
WHERE stage_arn = ? AND session_id = ?`, stageARN, sessionID)
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
	query := `SELECT ` + sessionColumns + ` FROM stage_sessions WHERE stage_arn = ?`
	query, args := paged(query, []any{stageARN}, p, true)
	return querySessions(ctx, s.r, query, args...)
}

func querySessions(ctx context.Context, q querier, query string, args ...any) ([]*store.StageSession, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: query stage sessions: %w", err)
	}
	defer rows.Close()
	var ss []*store.StageSession
	for rows.Next() {
		var x store.StageSession
		var start int64
		var end sql.NullInt64
		if err := rows.Scan(&x.Seq, &x.StageARN, &x.SessionID, &start, &end, &x.NodeID); err != nil {
			return nil, fmt.Errorf("sqlite: scan stage session: %w", err)
		}
		x.StartTime = fromMillis(start)
		if end.Valid {
			t := fromMillis(end.Int64)
			x.EndTime = &t
		}
		ss = append(ss, &x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: query stage sessions: %w", err)
	}
	return ss, nil
}

// PutParticipant implements store.Store. It returns ErrNotFound if the
// session does not exist.
func (s *Store) PutParticipant(ctx context.Context, p *store.Participant) error {
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		ok, err := sessionExists(ctx, tx, p.StageARN, p.SessionID)
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
// its Seq.
func putParticipant(ctx context.Context, tx *sql.Tx, p *store.Participant) (int64, error) {
	var seq int64
	if err := tx.QueryRowContext(ctx, `
INSERT INTO participants (stage_arn, session_id, participant_id, user_id, state, published,
	recording_state, first_join_time, doc)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (stage_arn, session_id, participant_id) DO UPDATE SET
	user_id = excluded.user_id,
	state = excluded.state,
	published = excluded.published,
	recording_state = excluded.recording_state,
	first_join_time = excluded.first_join_time,
	doc = excluded.doc
RETURNING seq`,
		p.StageARN, p.SessionID, p.ParticipantID, p.UserID, p.State, boolInt(p.Published),
		p.RecordingState, toMillis(p.FirstJoinTime), blob(p.Doc)).Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlite: put participant: %w", err)
	}
	return seq, nil
}

const participantColumns = `seq, stage_arn, session_id, participant_id, user_id, state, published,
	recording_state, first_join_time, doc`

// GetParticipant implements store.Store.
func (s *Store) GetParticipant(ctx context.Context, stageARN, sessionID, participantID string) (*store.Participant, error) {
	ps, err := queryParticipants(ctx, s.r, `SELECT `+participantColumns+` FROM participants
WHERE stage_arn = ? AND session_id = ? AND participant_id = ?`, stageARN, sessionID, participantID)
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
	var b strings.Builder
	b.WriteString(`SELECT ` + participantColumns + ` FROM participants WHERE stage_arn = ? AND session_id = ?`)
	args := []any{q.StageARN, q.SessionID}
	if q.UserID != nil {
		b.WriteString(` AND user_id = ?`)
		args = append(args, *q.UserID)
	}
	if q.Published != nil {
		b.WriteString(` AND published = ?`)
		args = append(args, boolInt(*q.Published))
	}
	if q.State != nil {
		b.WriteString(` AND state = ?`)
		args = append(args, *q.State)
	}
	if q.RecordingState != nil {
		b.WriteString(` AND recording_state = ?`)
		args = append(args, *q.RecordingState)
	}
	query, args := paged(b.String(), args, q.Page, false)
	return queryParticipants(ctx, s.r, query, args...)
}

func queryParticipants(ctx context.Context, q querier, query string, args ...any) ([]*store.Participant, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: query participants: %w", err)
	}
	defer rows.Close()
	var ps []*store.Participant
	for rows.Next() {
		var p store.Participant
		var published, firstJoin int64
		if err := rows.Scan(&p.Seq, &p.StageARN, &p.SessionID, &p.ParticipantID, &p.UserID, &p.State,
			&published, &p.RecordingState, &firstJoin, &p.Doc); err != nil {
			return nil, fmt.Errorf("sqlite: scan participant: %w", err)
		}
		p.Published = published != 0
		p.FirstJoinTime = fromMillis(firstJoin)
		ps = append(ps, &p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: query participants: %w", err)
	}
	return ps, nil
}

// AddParticipantEvent implements store.Store. It returns ErrNotFound if the
// session does not exist.
func (s *Store) AddParticipantEvent(ctx context.Context, e *store.ParticipantEvent, outbox ...*store.OutboxEntry) error {
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		ok, err := sessionExists(ctx, tx, e.StageARN, e.SessionID)
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

// addParticipantEvent appends an event row in tx and returns its Seq.
func addParticipantEvent(ctx context.Context, tx *sql.Tx, e *store.ParticipantEvent) (int64, error) {
	var seq int64
	if err := tx.QueryRowContext(ctx, `
INSERT INTO participant_events (stage_arn, session_id, participant_id, event_time, doc)
VALUES (?, ?, ?, ?, ?)
RETURNING seq`,
		e.StageARN, e.SessionID, e.ParticipantID, toMillis(e.EventTime), blob(e.Doc)).Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlite: add participant event: %w", err)
	}
	return seq, nil
}

const eventColumns = `seq, stage_arn, session_id, participant_id, event_time, doc`

func scanEvent(rows *sql.Rows, e *store.ParticipantEvent) error {
	var at int64
	err := rows.Scan(&e.Seq, &e.StageARN, &e.SessionID, &e.ParticipantID, &at, &e.Doc)
	e.EventTime = fromMillis(at)
	return err
}

// ListParticipantEvents implements store.Store.
func (s *Store) ListParticipantEvents(ctx context.Context, stageARN, sessionID, participantID string, p store.Page) ([]*store.ParticipantEvent, error) {
	query, args := paged(`SELECT `+eventColumns+` FROM participant_events
WHERE stage_arn = ? AND session_id = ? AND participant_id = ?`, []any{stageARN, sessionID, participantID}, p, false)
	return collect(ctx, s.r, "participant events", query, args, scanEvent)
}

// PutParticipantReplica implements store.Store: an upsert keyed by source
// stage, participant and destination stage, keeping Seq. It returns
// ErrNotFound if the source stage does not exist.
func (s *Store) PutParticipantReplica(ctx context.Context, r *store.ParticipantReplica) error {
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		ok, err := stageExists(ctx, tx, r.SourceStageARN)
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
func putReplica(ctx context.Context, tx *sql.Tx, r *store.ParticipantReplica) (int64, error) {
	var seq int64
	if err := tx.QueryRowContext(ctx, `
INSERT INTO participant_replicas (source_stage_arn, participant_id, destination_stage_arn, state, doc)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (source_stage_arn, participant_id, destination_stage_arn) DO UPDATE SET
	state = excluded.state,
	doc = excluded.doc
RETURNING seq`,
		r.SourceStageARN, r.ParticipantID, r.DestinationStageARN, r.State, blob(r.Doc)).Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlite: put participant replica: %w", err)
	}
	return seq, nil
}

// ListParticipantReplicas implements store.Store, in Seq order.
func (s *Store) ListParticipantReplicas(ctx context.Context, sourceStageARN, participantID string, p store.Page) ([]*store.ParticipantReplica, error) {
	query, args := paged(`SELECT seq, source_stage_arn, participant_id, destination_stage_arn, state, doc
FROM participant_replicas WHERE source_stage_arn = ? AND participant_id = ?`, []any{sourceStageARN, participantID}, p, false)
	return collect(ctx, s.r, "participant replicas", query, args, func(rows *sql.Rows, r *store.ParticipantReplica) error {
		return rows.Scan(&r.Seq, &r.SourceStageARN, &r.ParticipantID, &r.DestinationStageARN, &r.State, &r.Doc)
	})
}

// RevokeParticipant implements store.Store. Revoking again is a no-op (the
// first time is kept). It returns ErrNotFound if the stage does not exist.
func (s *Store) RevokeParticipant(ctx context.Context, stageARN, participantID string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		ok, err := stageExists(ctx, tx, stageARN)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("stage", stageARN)
		}
		if _, err := tx.ExecContext(ctx, `
INSERT INTO participant_revocations (stage_arn, participant_id, revoked_at) VALUES (?, ?, ?)
ON CONFLICT (stage_arn, participant_id) DO NOTHING`,
			stageARN, participantID, toMillis(at)); err != nil {
			return fmt.Errorf("sqlite: revoke participant: %w", err)
		}
		return nil
	})
}

// IsParticipantRevoked implements store.Store.
func (s *Store) IsParticipantRevoked(ctx context.Context, stageARN, participantID string) (bool, error) {
	return exists(ctx, s.r,
		`SELECT 1 FROM participant_revocations WHERE stage_arn = ? AND participant_id = ?`,
		stageARN, participantID)
}

// GetSetting implements store.Store.
func (s *Store) GetSetting(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("setting", key)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get setting: %w", err)
	}
	return v, nil
}

// PutSettingIfAbsent implements store.Store.
func (s *Store) PutSettingIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error) {
	var v []byte
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`,
			key, blob(value)); err != nil {
			return fmt.Errorf("sqlite: put setting: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = ?`, key).Scan(&v); err != nil {
			return fmt.Errorf("sqlite: put setting: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}
