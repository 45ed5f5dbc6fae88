package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/rostrum-dev/rostrum/internal/store"
)

// resourceColumns select a resource with its references, in one statement
// and so one snapshot.
const resourceColumns = `r.seq, r.arn, r.kind, r.owner, r.state, r.active_session_id, r.node, r.client_token, r.doc, r.created_at,
	ARRAY(SELECT x.ref FROM resource_refs x WHERE x.arn = r.arn ORDER BY x.pos)`

func scanResource(rows pgx.Row, r *store.Resource) error {
	var created int64
	var refs []string
	if err := rows.Scan(&r.Seq, &r.ARN, &r.Kind, &r.Owner, &r.State, &r.ActiveSessionID, &r.Node, &r.ClientToken, &r.Doc, &created, &refs); err != nil {
		return err
	}
	r.CreatedAt = fromMillis(created)
	if len(refs) > 0 {
		r.Refs = refs
	}
	return nil
}

// CreateResource implements store.Store. The (kind, owner) lock makes the
// quota count and the insert one step among all writers, and gives the
// resource its Seq in commit order within its lists (package comment).
func (s *Store) CreateResource(ctx context.Context, r *store.Resource, limit int) error {
	created := now()
	var seq int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		if err := lockKey(ctx, tx, lockKindOwner, r.Kind, r.Owner); err != nil {
			return err
		}
		dup, err := exists(ctx, tx, `SELECT 1 FROM resources WHERE arn = $1`, r.ARN)
		if err != nil {
			return err
		}
		if dup {
			return fmt.Errorf("postgres: resource %s: %w", r.ARN, store.ErrAlreadyExists)
		}
		if r.ClientToken != "" {
			// Under the (kind, owner) lock: no other create of this list
			// can take the token between the check and the insert.
			taken, err := exists(ctx, tx, `SELECT 1 FROM resources WHERE kind = $1 AND owner = $2 AND client_token = $3`, r.Kind, r.Owner, r.ClientToken)
			if err != nil {
				return err
			}
			if taken {
				return fmt.Errorf("postgres: %s client token %q: %w", r.Kind, r.ClientToken, store.ErrAlreadyExists)
			}
		}
		if limit > 0 {
			var n int
			if err := tx.QueryRow(ctx,
				`SELECT COUNT(*) FROM resources WHERE kind = $1 AND owner = $2`,
				r.Kind, r.Owner).Scan(&n); err != nil {
				return fmt.Errorf("postgres: %w", err)
			}
			if n >= limit {
				return fmt.Errorf("postgres: %d of %d %s resources: %w", n, limit, r.Kind, store.ErrQuotaExceeded)
			}
		}
		err = tx.QueryRow(ctx, `
INSERT INTO resources (arn, kind, owner, state, active_session_id, node, client_token, doc, created_at)
VALUES ($1, $2, $3, $4, '', $5, $6, $7, $8)
RETURNING seq`,
			r.ARN, r.Kind, r.Owner, r.State, r.Node, r.ClientToken, blob(r.Doc), toMillis(created)).Scan(&seq)
		if pgCode(err) == uniqueViolation {
			// The same ARN under another kind or owner (its own lock).
			return fmt.Errorf("postgres: resource %s: %w", r.ARN, store.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: insert resource: %w", err)
		}
		return insertRefs(ctx, tx, r.ARN, r.Refs)
	})
	if err != nil {
		return err
	}
	r.Seq, r.CreatedAt = seq, created
	return nil
}

// GetResource implements store.Store. It is on the path of every GetStage
// and CreateParticipantToken: one statement, one round trip.
func (s *Store) GetResource(ctx context.Context, arn string) (*store.Resource, error) {
	return getResource(ctx, s.pool, arn, "")
}

// getResource reads a resource, with a locking clause (FOR UPDATE …) when
// lock is set.
func getResource(ctx context.Context, q querier, arn, lock string) (*store.Resource, error) {
	var r store.Resource
	err := scanResource(q.QueryRow(ctx, `SELECT `+resourceColumns+` FROM resources r WHERE r.arn = $1 `+lock, arn), &r)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, notFound("resource", arn)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get resource: %w", err)
	}
	return &r, nil
}

// UpdateResource implements store.Store. fn may change Doc, State and Refs;
// changes to the other fields are not written and not returned. The row
// is locked from the read to the commit, so concurrent updates apply one
// after the other.
func (s *Store) UpdateResource(ctx context.Context, arn string, fn func(r *store.Resource) error) (*store.Resource, error) {
	var r *store.Resource
	err := s.write(ctx, func(tx pgx.Tx) error {
		cur, err := getResource(ctx, tx, arn, "FOR NO KEY UPDATE OF r")
		if err != nil {
			return err
		}
		r = cloneResource(cur)
		if err := fn(r); err != nil {
			return err
		}
		r.ARN, r.Kind, r.Owner, r.Seq = cur.ARN, cur.Kind, cur.Owner, cur.Seq
		r.ActiveSessionID, r.CreatedAt = cur.ActiveSessionID, cur.CreatedAt
		r.Node, r.ClientToken = cur.Node, cur.ClientToken
		if _, err := tx.Exec(ctx,
			`UPDATE resources SET state = $1, doc = $2 WHERE arn = $3`,
			r.State, blob(r.Doc), arn); err != nil {
			return fmt.Errorf("postgres: update resource: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM resource_refs WHERE arn = $1`, arn); err != nil {
			return fmt.Errorf("postgres: update resource: %w", err)
		}
		return insertRefs(ctx, tx, arn, r.Refs)
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// DeleteResource implements store.Store. A nil check deletes
// unconditionally. Deleting a stage deletes its sessions, participants,
// events, replicas (as the source) and revocations (ON DELETE CASCADE).
func (s *Store) DeleteResource(ctx context.Context, arn string, check func(r *store.Resource, referrers []*store.Resource) error) error {
	return s.write(ctx, func(tx pgx.Tx) error {
		r, err := getResource(ctx, tx, arn, "FOR UPDATE OF r")
		if err != nil {
			return err
		}
		// A resource naming itself is not its own referrer.
		referrers, err := collect(ctx, tx, "referrers", `SELECT `+resourceColumns+` FROM resources r
WHERE r.arn IN (SELECT arn FROM resource_refs WHERE ref = $1) AND r.arn <> $1
ORDER BY r.seq`, []any{arn}, scanResource)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(r, referrers); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM resources WHERE arn = $1`, arn); err != nil {
			return fmt.Errorf("postgres: delete resource: %w", err)
		}
		return nil
	})
}

// ListResources implements store.Store. Page.Limit <= 0 lists every row.
func (s *Store) ListResources(ctx context.Context, q store.ResourceQuery) ([]*store.Resource, error) {
	var a args
	var b strings.Builder
	b.WriteString(`SELECT ` + resourceColumns + ` FROM resources r WHERE kind = ` + a.add(q.Kind) + ` AND owner = ` + a.add(q.Owner))
	if q.State != "" {
		b.WriteString(` AND state = ` + a.add(q.State))
	}
	if q.Ref != "" {
		// IN, not a join: a resource may name the same ARN twice.
		b.WriteString(` AND arn IN (SELECT arn FROM resource_refs WHERE ref = ` + a.add(q.Ref) + `)`)
	}
	if q.ClientToken != "" {
		b.WriteString(` AND client_token = ` + a.add(q.ClientToken))
	}
	query := paged(b.String(), &a, q.Page, false)
	return collect(ctx, s.pool, "resources", query, a, scanResource)
}

// ScanResources implements store.Store. Page.Limit <= 0 lists every row.
func (s *Store) ScanResources(ctx context.Context, q store.ResourceScan) ([]*store.Resource, error) {
	var a args
	var b strings.Builder
	b.WriteString(`SELECT ` + resourceColumns + ` FROM resources r WHERE kind = ` + a.add(q.Kind))
	if len(q.States) > 0 {
		b.WriteString(` AND state = ANY(` + a.add(q.States) + `::text[])`)
	}
	if q.Node != "" {
		b.WriteString(` AND node = ` + a.add(q.Node))
	}
	query := paged(b.String(), &a, q.Page, false)
	return collect(ctx, s.pool, "resources", query, a, scanResource)
}

// CountResources implements store.Store.
func (s *Store) CountResources(ctx context.Context, kind, owner string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx,
		`SELECT COUNT(*) FROM resources WHERE kind = $1 AND owner = $2`, kind, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count resources: %w", err)
	}
	return n, nil
}

// insertRefs writes a resource's references, in order, in one statement.
func insertRefs(ctx context.Context, tx pgx.Tx, arn string, refs []string) error {
	if len(refs) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `
INSERT INTO resource_refs (arn, pos, ref)
SELECT $1, n - 1, ref FROM unnest($2::text[]) WITH ORDINALITY AS t (ref, n)`, arn, refs); err != nil {
		return fmt.Errorf("postgres: insert refs: %w", err)
	}
	return nil
}

func cloneResource(r *store.Resource) *store.Resource {
	c := *r
	c.Refs = append([]string(nil), r.Refs...)
	c.Doc = append([]byte(nil), r.Doc...)
	return &c
}
