package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// DeleteEndedSessions implements store.Store. The rows under expired
// sessions go first, by the indexes that lead with (stage_arn,
// session_id); a session is deleted once nothing is left under it, so the
// foreign keys' cascade never has more to delete than the budget allows.
func (s *Store) DeleteEndedSessions(ctx context.Context, endedBefore time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, fmt.Errorf("sqlite: delete ended sessions: limit %d must be positive", limit)
	}
	cut := toMillis(endedBefore)
	deleted := 0
	err := s.write(ctx, func(tx *sql.Tx) error {
		steps := []struct{ what, query string }{
			{"participant events", `DELETE FROM participant_events WHERE seq IN (
	SELECT e.seq FROM stage_sessions s JOIN participant_events e
		ON e.stage_arn = s.stage_arn AND e.session_id = s.session_id
	WHERE s.end_time IS NOT NULL AND s.end_time < ? LIMIT ?)`},
			{"participants", `DELETE FROM participants WHERE seq IN (
	SELECT p.seq FROM stage_sessions s JOIN participants p
		ON p.stage_arn = s.stage_arn AND p.session_id = s.session_id
	WHERE s.end_time IS NOT NULL AND s.end_time < ? LIMIT ?)`},
			{"stage sessions", `DELETE FROM stage_sessions WHERE seq IN (
	SELECT s.seq FROM stage_sessions s
	WHERE s.end_time IS NOT NULL AND s.end_time < ?
		AND NOT EXISTS (SELECT 1 FROM participant_events e WHERE e.stage_arn = s.stage_arn AND e.session_id = s.session_id)
		AND NOT EXISTS (SELECT 1 FROM participants p WHERE p.stage_arn = s.stage_arn AND p.session_id = s.session_id)
	LIMIT ?)`},
		}
		for _, st := range steps {
			if deleted >= limit {
				break
			}
			res, err := tx.ExecContext(ctx, st.query, cut, limit-deleted)
			if err != nil {
				return fmt.Errorf("sqlite: delete expired %s: %w", st.what, err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlite: delete expired %s: %w", st.what, err)
			}
			deleted += int(n)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return deleted, nil
}
