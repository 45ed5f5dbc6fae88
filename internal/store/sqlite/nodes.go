package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store"
)

// Heartbeat implements store.Store: an upsert that keeps the later time
// (the conditional DO UPDATE is PostgreSQL's syntax too).
func (s *Store) Heartbeat(ctx context.Context, nodeID string, at time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `
INSERT INTO nodes (node_id, heartbeat) VALUES (?, ?)
ON CONFLICT (node_id) DO UPDATE SET heartbeat = excluded.heartbeat
WHERE excluded.heartbeat > nodes.heartbeat`,
			nodeID, toMillis(at)); err != nil {
			return fmt.Errorf("sqlite: heartbeat: %w", err)
		}
		return nil
	})
}

// ListNodes implements store.Store.
func (s *Store) ListNodes(ctx context.Context) ([]*store.Node, error) {
	return collect(ctx, s.r, "nodes", `SELECT node_id, heartbeat FROM nodes ORDER BY node_id`, nil,
		func(rows *sql.Rows, n *store.Node) error {
			var at int64
			err := rows.Scan(&n.ID, &at)
			n.Heartbeat = fromMillis(at)
			return err
		})
}

// CloseNodeSessions implements store.Store, in one write transaction: the
// staleness check, the reads that fn is given and every write.
func (s *Store) CloseNodeSessions(ctx context.Context, nodeID string, aliveSince time.Time,
	fn func(open []*store.OpenSession) (*store.SessionClosing, error)) (int, error) {
	var closed int
	err := s.write(ctx, func(tx *sql.Tx) error {
		var beat sql.NullInt64
		err := tx.QueryRowContext(ctx, `SELECT heartbeat FROM nodes WHERE node_id = ?`, nodeID).Scan(&beat)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: read heartbeat: %w", err)
		}
		if !aliveSince.IsZero() && beat.Valid && beat.Int64 >= toMillis(aliveSince) {
			return fmt.Errorf("sqlite: node %s beat at %v: %w", nodeID, fromMillis(beat.Int64), store.ErrNodeAlive)
		}
		sessions, err := querySessions(ctx, tx, `SELECT `+sessionColumns+` FROM stage_sessions
WHERE node_id = ? AND end_time IS NULL ORDER BY seq`, nodeID)
		if err != nil {
			return err
		}
		open := make([]*store.OpenSession, 0, len(sessions))
		closing := map[[2]string]bool{}
		closingStage := map[string]bool{}
		for _, ss := range sessions {
			o, err := openSession(ctx, tx, ss, beat)
			if err != nil {
				return err
			}
			open = append(open, o)
			closing[[2]string{ss.StageARN, ss.SessionID}] = true
			closingStage[ss.StageARN] = true
		}
		var w *store.SessionClosing
		if fn != nil {
			if w, err = fn(open); err != nil {
				return err
			}
		}
		for _, o := range open {
			ss := o.Session
			if _, err := tx.ExecContext(ctx, `UPDATE stage_sessions SET end_time = ? WHERE seq = ?`,
				toMillis(o.End), ss.Seq); err != nil {
				return fmt.Errorf("sqlite: end stage session: %w", err)
			}
			if _, err := tx.ExecContext(ctx,
				`UPDATE resources SET active_session_id = '' WHERE arn = ? AND active_session_id = ?`,
				ss.StageARN, ss.SessionID); err != nil {
				return fmt.Errorf("sqlite: clear active session: %w", err)
			}
		}
		if w != nil {
			// Rows go only under the sessions being closed: fn cannot
			// reach into another node's (or a live) session.
			under := func(stageARN, sessionID string) error {
				if !closing[[2]string{stageARN, sessionID}] {
					return fmt.Errorf("sqlite: close node sessions: %s %s is not being closed", stageARN, sessionID)
				}
				return nil
			}
			for _, p := range w.Participants {
				if err := under(p.StageARN, p.SessionID); err != nil {
					return err
				}
				if p.Seq, err = putParticipant(ctx, tx, p); err != nil {
					return err
				}
			}
			for _, e := range w.Events {
				if err := under(e.StageARN, e.SessionID); err != nil {
					return err
				}
				if e.Seq, err = addParticipantEvent(ctx, tx, e); err != nil {
					return err
				}
			}
			for _, r := range w.Replicas {
				if !closingStage[r.SourceStageARN] {
					return fmt.Errorf("sqlite: close node sessions: replica of %s, which has no session being closed", r.SourceStageARN)
				}
				if r.Seq, err = putReplica(ctx, tx, r); err != nil {
					return err
				}
			}
			seqs, err := insertOutbox(ctx, tx, w.Outbox)
			if err != nil {
				return err
			}
			for i, e := range w.Outbox {
				e.Seq = seqs[i]
			}
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM nodes WHERE node_id = ?`, nodeID); err != nil {
			return fmt.Errorf("sqlite: remove node: %w", err)
		}
		closed = len(open)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return closed, nil
}

// openSession reads what closing an active session needs: its end (the
// node's last sign of life: its heartbeat, the session's start or its
// latest event), its connected participants and their events.
func openSession(ctx context.Context, tx *sql.Tx, ss *store.StageSession, beat sql.NullInt64) (*store.OpenSession, error) {
	end := toMillis(ss.StartTime)
	if beat.Valid {
		end = max(end, beat.Int64)
	}
	var last sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(event_time) FROM participant_events WHERE stage_arn = ? AND session_id = ?`,
		ss.StageARN, ss.SessionID).Scan(&last); err != nil {
		return nil, fmt.Errorf("sqlite: last event: %w", err)
	}
	if last.Valid {
		end = max(end, last.Int64)
	}
	connected, err := queryParticipants(ctx, tx, `SELECT `+participantColumns+` FROM participants
WHERE stage_arn = ? AND session_id = ? AND state = 'CONNECTED' ORDER BY seq`, ss.StageARN, ss.SessionID)
	if err != nil {
		return nil, err
	}
	events, err := collect(ctx, tx, "participant events", `SELECT `+eventColumns+` FROM participant_events
WHERE stage_arn = ? AND session_id = ? AND participant_id IN (
	SELECT participant_id FROM participants WHERE stage_arn = ? AND session_id = ? AND state = 'CONNECTED')
ORDER BY seq`, []any{ss.StageARN, ss.SessionID, ss.StageARN, ss.SessionID}, scanEvent)
	if err != nil {
		return nil, err
	}
	return &store.OpenSession{Session: ss, End: fromMillis(end), Connected: connected, Events: events}, nil
}
