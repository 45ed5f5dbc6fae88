package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rostrum-dev/rostrum/internal/store"
)

// Heartbeat implements store.Store: an upsert that keeps the later time.
func (s *Store) Heartbeat(ctx context.Context, nodeID string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `
INSERT INTO nodes (node_id, heartbeat) VALUES ($1, $2)
ON CONFLICT (node_id) DO UPDATE SET heartbeat = excluded.heartbeat
WHERE excluded.heartbeat > nodes.heartbeat`,
		nodeID, toMillis(at)); err != nil {
		return fmt.Errorf("postgres: heartbeat: %w", err)
	}
	return nil
}

// ListNodes implements store.Store.
func (s *Store) ListNodes(ctx context.Context) ([]*store.Node, error) {
	return collect(ctx, s.pool, "nodes", `SELECT node_id, heartbeat FROM nodes ORDER BY node_id`, nil,
		func(row pgx.Row, n *store.Node) error {
			var at int64
			err := row.Scan(&n.ID, &at)
			n.Heartbeat = fromMillis(at)
			return err
		})
}

// CloseNodeSessions implements store.Store, in one transaction: the
// staleness check, the reads that fn is given and every write. The node's
// row is locked first, so a heartbeat that arrives meanwhile waits and
// then finds the node closed (or, if it committed first, is read and
// makes the node alive); the sessions' rows are locked as they are read,
// so two peers closing one dead node do it once: the second waits, then
// finds the sessions ended.
func (s *Store) CloseNodeSessions(ctx context.Context, nodeID string, aliveSince time.Time,
	fn func(open []*store.OpenSession) (*store.SessionClosing, error)) (int, error) {
	var closed int
	err := s.write(ctx, func(tx pgx.Tx) error {
		var beat *int64
		err := tx.QueryRow(ctx, `SELECT heartbeat FROM nodes WHERE node_id = $1 FOR UPDATE`, nodeID).Scan(&beat)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: read heartbeat: %w", err)
		}
		if !aliveSince.IsZero() && beat != nil && *beat >= toMillis(aliveSince) {
			return fmt.Errorf("postgres: node %s beat at %v: %w", nodeID, fromMillis(*beat), store.ErrNodeAlive)
		}
		sessions, err := collect(ctx, tx, "stage sessions", `SELECT `+sessionColumns+` FROM stage_sessions
WHERE node_id = $1 AND end_time IS NULL ORDER BY seq FOR NO KEY UPDATE`, []any{nodeID}, scanSession)
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
			if _, err := tx.Exec(ctx, `UPDATE stage_sessions SET end_time = $1 WHERE seq = $2`,
				toMillis(o.End), ss.Seq); err != nil {
				return fmt.Errorf("postgres: end stage session: %w", err)
			}
			if _, err := tx.Exec(ctx,
				`UPDATE resources SET active_session_id = '' WHERE arn = $1 AND active_session_id = $2`,
				ss.StageARN, ss.SessionID); err != nil {
				return fmt.Errorf("postgres: clear active session: %w", err)
			}
		}
		if w != nil {
			// Rows go only under the sessions being closed (whose rows
			// this transaction has locked): fn cannot reach into another
			// node's (or a live) session.
			under := func(stageARN, sessionID string) error {
				if !closing[[2]string{stageARN, sessionID}] {
					return fmt.Errorf("postgres: close node sessions: %s %s is not being closed", stageARN, sessionID)
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
					return fmt.Errorf("postgres: close node sessions: replica of %s, which has no session being closed", r.SourceStageARN)
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
		if _, err := tx.Exec(ctx, `DELETE FROM nodes WHERE node_id = $1`, nodeID); err != nil {
			return fmt.Errorf("postgres: remove node: %w", err)
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
func openSession(ctx context.Context, tx pgx.Tx, ss *store.StageSession, beat *int64) (*store.OpenSession, error) {
	end := toMillis(ss.StartTime)
	if beat != nil {
		end = max(end, *beat)
	}
	var last *int64
	if err := tx.QueryRow(ctx, `SELECT MAX(event_time) FROM participant_events WHERE stage_arn = $1 AND session_id = $2`,
		ss.StageARN, ss.SessionID).Scan(&last); err != nil {
		return nil, fmt.Errorf("postgres: last event: %w", err)
	}
	if last != nil {
		end = max(end, *last)
	}
	connected, err := collect(ctx, tx, "participants", `SELECT `+participantColumns+` FROM participants
WHERE stage_arn = $1 AND session_id = $2 AND state = 'CONNECTED' ORDER BY seq`, []any{ss.StageARN, ss.SessionID}, scanParticipant)
	if err != nil {
		return nil, err
	}
	events, err := collect(ctx, tx, "participant events", `SELECT `+eventColumns+` FROM participant_events
WHERE stage_arn = $1 AND session_id = $2 AND participant_id IN (
	SELECT participant_id FROM participants WHERE stage_arn = $1 AND session_id = $2 AND state = 'CONNECTED')
ORDER BY seq`, []any{ss.StageARN, ss.SessionID}, scanEvent)
	if err != nil {
		return nil, err
	}
	return &store.OpenSession{Session: ss, End: fromMillis(end), Connected: connected, Events: events}, nil
}

// DeleteEndedSessions implements store.Store. The rows under expired
// sessions go first; a session is deleted once nothing is left under it,
// so the foreign keys' cascade never has more to delete than the budget
// allows. Two nodes sweeping at once delete disjoint rows: a row the
// other deleted first is skipped, not counted.
func (s *Store) DeleteEndedSessions(ctx context.Context, endedBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("postgres: delete ended sessions: limit %d must be positive", limit)
	}
	cut := toMillis(endedBefore)
	deleted := 0
	err := s.write(ctx, func(tx pgx.Tx) error {
		deleted = 0 // a retried transaction counts again
		steps := []struct{ what, query string }{
			{"participant events", `DELETE FROM participant_events WHERE seq IN (
	SELECT e.seq FROM stage_sessions s JOIN participant_events e
		ON e.stage_arn = s.stage_arn AND e.session_id = s.session_id
	WHERE s.end_time IS NOT NULL AND s.end_time < $1 LIMIT $2)`},
			{"participants", `DELETE FROM participants WHERE seq IN (
	SELECT p.seq FROM stage_sessions s JOIN participants p
		ON p.stage_arn = s.stage_arn AND p.session_id = s.session_id
	WHERE s.end_time IS NOT NULL AND s.end_time < $1 LIMIT $2)`},
			{"stage sessions", `DELETE FROM stage_sessions WHERE seq IN (
	SELECT s.seq FROM stage_sessions s
	WHERE s.end_time IS NOT NULL AND s.end_time < $1
		AND NOT EXISTS (SELECT 1 FROM participant_events e WHERE e.stage_arn = s.stage_arn AND e.session_id = s.session_id)
		AND NOT EXISTS (SELECT 1 FROM participants p WHERE p.stage_arn = s.stage_arn AND p.session_id = s.session_id)
	LIMIT $2)`},
		}
		for _, st := range steps {
			if deleted >= limit {
				break
			}
			tag, err := tx.Exec(ctx, st.query, cut, limit-deleted)
			if err != nil {
				return fmt.Errorf("postgres: delete expired %s: %w", st.what, err)
			}
			deleted += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return deleted, nil
}
