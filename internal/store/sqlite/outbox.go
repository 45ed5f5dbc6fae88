package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store"
)

// insertOutbox inserts outbox entries in the caller's transaction and
// returns their Seqs.
func insertOutbox(ctx context.Context, tx *sql.Tx, entries []*store.OutboxEntry) ([]int64, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	stmt, err := tx.PrepareContext(ctx, `
INSERT INTO event_outbox (sink, partition_key, event_id, doc, attempts, next_attempt, last_error, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
RETURNING seq`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: enqueue events: %w", err)
	}
	defer stmt.Close()
	seqs := make([]int64, len(entries))
	for i, e := range entries {
		if err := stmt.QueryRowContext(ctx, e.Sink, e.Partition, e.EventID, blob(e.Doc), e.Attempts,
			toMillis(e.NextAttempt), e.LastError, toMillis(e.CreatedAt)).Scan(&seqs[i]); err != nil {
			return nil, fmt.Errorf("sqlite: enqueue events: %w", err)
		}
	}
	return seqs, nil
}

// EnqueueEvents implements store.Store.
func (s *Store) EnqueueEvents(ctx context.Context, entries ...*store.OutboxEntry) error {
	var seqs []int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		seqs, err = insertOutbox(ctx, tx, entries)
		return err
	})
	if err != nil {
		return err
	}
	for i, e := range entries {
		e.Seq = seqs[i]
	}
	return nil
}

// heads selects the oldest entry of each partition of a sink (one
// parameter: the sink). The index on (sink, partition_key, seq) serves the
// grouping; a backlog is bounded by the bus's queue limit.
const heads = `SELECT MIN(seq) AS seq FROM event_outbox WHERE sink = ? GROUP BY partition_key`

const outboxColumns = `o.seq, o.sink, o.partition_key, o.event_id, o.doc, o.attempts, o.next_attempt, o.last_error, o.created_at`

// PendingEvents implements store.Store, in one read transaction.
func (s *Store) PendingEvents(ctx context.Context, sink string, now time.Time, limit int) ([]*store.OutboxEntry, time.Time, error) {
	var ready []*store.OutboxEntry
	var next time.Time
	err := s.read(ctx, func(tx *sql.Tx) error {
		query := `SELECT ` + outboxColumns + ` FROM event_outbox o JOIN (` + heads + `) h ON h.seq = o.seq
WHERE o.next_attempt <= ? ORDER BY o.seq`
		args := []any{sink, toMillis(now)}
		if limit > 0 {
			query += ` LIMIT ?`
			args = append(args, limit)
		}
		rows, err := tx.QueryContext(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("sqlite: pending events: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var e store.OutboxEntry
			var nextAt, created int64
			if err := rows.Scan(&e.Seq, &e.Sink, &e.Partition, &e.EventID, &e.Doc, &e.Attempts, &nextAt, &e.LastError, &created); err != nil {
				return fmt.Errorf("sqlite: scan outbox entry: %w", err)
			}
			e.NextAttempt, e.CreatedAt = fromMillis(nextAt), fromMillis(created)
			ready = append(ready, &e)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("sqlite: pending events: %w", err)
		}
		var later sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MIN(o.next_attempt) FROM event_outbox o JOIN (`+heads+`) h ON h.seq = o.seq
WHERE o.next_attempt > ?`, sink, toMillis(now)).Scan(&later); err != nil {
			return fmt.Errorf("sqlite: pending events: %w", err)
		}
		if later.Valid {
			next = fromMillis(later.Int64)
		}
		return nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	return ready, next, nil
}

// DeleteEvents implements store.Store.
func (s *Store) DeleteEvents(ctx context.Context, sink string, seqs ...int64) error {
	if len(seqs) == 0 {
		return nil
	}
	args := []any{sink}
	for _, q := range seqs {
		args = append(args, q)
	}
	marks := strings.TrimSuffix(strings.Repeat("?,", len(seqs)), ",")
	return s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM event_outbox WHERE sink = ? AND seq IN (`+marks+`)`, args...); err != nil {
			return fmt.Errorf("sqlite: delete events: %w", err)
		}
		return nil
	})
}

// DeferEvent implements store.Store.
func (s *Store) DeferEvent(ctx context.Context, sink string, seq int64, next time.Time, lastErr string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE event_outbox SET attempts = attempts + 1, next_attempt = ?, last_error = ?
WHERE sink = ? AND seq = ?`, toMillis(next), lastErr, sink, seq)
		if err != nil {
			return fmt.Errorf("sqlite: defer event: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("sqlite: defer event: %w", err)
		} else if n == 0 {
			return notFound("outbox entry", sink, fmt.Sprint(seq))
		}
		return nil
	})
}

// CountEvents implements store.Store.
func (s *Store) CountEvents(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT sink, COUNT(*) FROM event_outbox GROUP BY sink`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: count events: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var sink string
		var n int
		if err := rows.Scan(&sink, &n); err != nil {
			return nil, fmt.Errorf("sqlite: count events: %w", err)
		}
		counts[sink] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: count events: %w", err)
	}
	return counts, nil
}
