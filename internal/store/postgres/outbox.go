package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rostrum-dev/rostrum/internal/store"
)

// insertOutbox inserts outbox entries in the caller's transaction and
// returns their Seqs. A partition is delivered in Seq order, its oldest entry
// first (PendingEvents), so an entry must not become visible after a
// younger one of its partition: the entries take their Seqs under an
// advisory lock on (sink, partition) held until commit. Locks are taken in
// sorted order, after any row lock of the caller (package comment).
func insertOutbox(ctx context.Context, tx pgx.Tx, entries []*store.OutboxEntry) ([]int64, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	keys := make([][2]string, len(entries))
	for i, e := range entries {
		keys[i] = [2]string{e.Sink, e.Partition}
	}
	for _, k := range sortedUnique(keys) {
		if err := lockKey(ctx, tx, lockPartition, k[0], k[1]); err != nil {
			return nil, err
		}
	}
	b := &pgx.Batch{}
	for _, e := range entries {
		b.Queue(`
INSERT INTO event_outbox (sink, partition_key, event_id, doc, attempts, next_attempt, last_error, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING seq`, e.Sink, e.Partition, e.EventID, blob(e.Doc), e.Attempts,
			toMillis(e.NextAttempt), e.LastError, toMillis(e.CreatedAt))
	}
	br := tx.SendBatch(ctx, b)
	seqs := make([]int64, len(entries))
	for i := range entries {
		if err := br.QueryRow().Scan(&seqs[i]); err != nil {
			br.Close()
			return nil, fmt.Errorf("postgres: enqueue events: %w", err)
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("postgres: enqueue events: %w", err)
	}
	return seqs, nil
}

// EnqueueEvents implements store.Store.
func (s *Store) EnqueueEvents(ctx context.Context, entries ...*store.OutboxEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var seqs []int64
	err := s.write(ctx, func(tx pgx.Tx) error {
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
// parameter: the sink). The index on (sink, partition_key, seq) serves it.
const heads = `SELECT MIN(seq) AS seq FROM event_outbox WHERE sink = $1 GROUP BY partition_key`

const outboxColumns = `o.seq, o.sink, o.partition_key, o.event_id, o.doc, o.attempts, o.next_attempt, o.last_error, o.created_at`

// PendingEvents implements store.Store, in one snapshot.
func (s *Store) PendingEvents(ctx context.Context, sink string, now time.Time, limit int) ([]*store.OutboxEntry, time.Time, error) {
	var ready []*store.OutboxEntry
	var next time.Time
	err := s.read(ctx, func(tx pgx.Tx) error {
		a := args{sink, toMillis(now)}
		query := `SELECT ` + outboxColumns + ` FROM event_outbox o JOIN (` + heads + `) h ON h.seq = o.seq
WHERE o.next_attempt <= $2 ORDER BY o.seq`
		if limit > 0 {
			query += ` LIMIT ` + a.add(limit)
		}
		var err error
		ready, err = collect(ctx, tx, "outbox entries", query, a, func(row pgx.Row, e *store.OutboxEntry) error {
			var nextAt, created int64
			if err := row.Scan(&e.Seq, &e.Sink, &e.Partition, &e.EventID, &e.Doc, &e.Attempts, &nextAt, &e.LastError, &created); err != nil {
				return err
			}
			e.NextAttempt, e.CreatedAt = fromMillis(nextAt), fromMillis(created)
			return nil
		})
		if err != nil {
			return err
		}
		var later *int64
		if err := tx.QueryRow(ctx, `SELECT MIN(o.next_attempt) FROM event_outbox o JOIN (`+heads+`) h ON h.seq = o.seq
WHERE o.next_attempt > $2`, sink, toMillis(now)).Scan(&later); err != nil {
			return fmt.Errorf("postgres: pending events: %w", err)
		}
		if later != nil {
			next = fromMillis(*later)
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
	if _, err := s.pool.Exec(ctx, `DELETE FROM event_outbox WHERE sink = $1 AND seq = ANY($2)`, sink, seqs); err != nil {
		return fmt.Errorf("postgres: delete events: %w", err)
	}
	return nil
}

// DeferEvent implements store.Store.
func (s *Store) DeferEvent(ctx context.Context, sink string, seq int64, next time.Time, lastErr string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE event_outbox SET attempts = attempts + 1, next_attempt = $1, last_error = $2
WHERE sink = $3 AND seq = $4`, toMillis(next), lastErr, sink, seq)
	if err != nil {
		return fmt.Errorf("postgres: defer event: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return notFound("outbox entry", sink, fmt.Sprint(seq))
	}
	return nil
}

// CountEvents implements store.Store.
func (s *Store) CountEvents(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT sink, COUNT(*) FROM event_outbox GROUP BY sink`)
	if err != nil {
		return nil, fmt.Errorf("postgres: count events: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var sink string
		var n int
		if err := rows.Scan(&sink, &n); err != nil {
			return nil, fmt.Errorf("postgres: count events: %w", err)
		}
		counts[sink] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: count events: %w", err)
	}
	return counts, nil
}
