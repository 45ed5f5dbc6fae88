package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/rostrum-dev/rostrum/internal/store"
)

const resourceColumns = `seq, arn, kind, owner, state, active_session_id, node, client_token, doc, created_at`

// CreateResource implements store.Store.
func (s *Store) CreateResource(ctx context.Context, r *store.Resource, limit int) error {
	created := now()
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		dup, err := exists(ctx, tx, `SELECT 1 FROM resources WHERE arn = ?`, r.ARN)
		if err != nil {
			return err
		}
		if dup {
			return fmt.Errorf("sqlite: resource %s: %w", r.ARN, store.ErrAlreadyExists)
		}
		if r.ClientToken != "" {
			taken, err := exists(ctx, tx, `SELECT 1 FROM resources WHERE kind = ? AND owner = ? AND client_token = ?`, r.Kind, r.Owner, r.ClientToken)
			if err != nil {
				return err
			}
			if taken {
				return fmt.Errorf("sqlite: %s client token %q: %w", r.Kind, r.ClientToken, store.ErrAlreadyExists)
			}
		}
		if limit > 0 {
			// The count and the insert are in one IMMEDIATE transaction,
			// so no other writer can slip in between.
			var n int
			if err := tx.QueryRowContext(ctx,
				`SELECT COUNT(*) FROM resources WHERE kind = ? AND owner = ?`,
				r.Kind, r.Owner).Scan(&n); err != nil {
				return fmt.Errorf("sqlite: %w", err)
			}
			if n >= limit {
				return fmt.Errorf("sqlite: %d of %d %s resources: %w", n, limit, r.Kind, store.ErrQuotaExceeded)
			}
		}
		if err := tx.QueryRowContext(ctx, `
INSERT INTO resources (arn, kind, owner, state, active_session_id, node, client_token, doc, created_at)
VALUES (?, ?, ?, ?, '', ?, ?, ?, ?)
RETURNING seq`,
			r.ARN, r.Kind, r.Owner, r.State, r.Node, r.ClientToken, blob(r.Doc), toMillis(created)).Scan(&seq); err != nil {
			return fmt.Errorf("sqlite: insert resource: %w", err)
		}
		return insertRefs(ctx, tx, r.ARN, r.Refs)
	})
	if err != nil {
		return err
	}
	r.Seq, r.CreatedAt = seq, created
	return nil
}

// GetResource implements store.Store.
func (s *Store) GetResource(ctx context.Context, arn string) (*store.Resource, error) {
	// One statement, so one snapshot without a transaction: the resource
	// and its references (newline-joined; ARNs hold no newline).
	var r store.Resource
	var created int64
	var refs sql.NullString
	err := s.getResource.QueryRowContext(ctx, arn).Scan(&r.Seq, &r.ARN, &r.Kind, &r.Owner, &r.State, &r.ActiveSessionID, &r.Node, &r.ClientToken, &r.Doc, &created, &refs)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("resource", arn)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get resource: %w", err)
	}
	r.CreatedAt = fromMillis(created)
	if refs.Valid && refs.String != "" {
		r.Refs = strings.Split(refs.String, "\n")
	}
	return &r, nil
}

const getResourceQuery = `SELECT ` + resourceColumns + `,
	(SELECT group_concat(ref, char(10) ORDER BY pos) FROM resource_refs WHERE resource_refs.arn = resources.arn)
FROM resources WHERE arn = ?`

// UpdateResource implements store.Store. fn may change Doc, State and Refs;
// changes to the other fields are not written and not returned.
func (s *Store) UpdateResource(ctx context.Context, arn string, fn func(r *store.Resource) error) (*store.Resource, error) {
	var r *store.Resource
	err := s.write(ctx, func(tx *sql.Tx) error {
		cur, err := getResource(ctx, tx, arn)
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
		if _, err := tx.ExecContext(ctx,
			`UPDATE resources SET state = ?, doc = ? WHERE arn = ?`,
			r.State, blob(r.Doc), arn); err != nil {
			return fmt.Errorf("sqlite: update resource: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM resource_refs WHERE arn = ?`, arn); err != nil {
			return fmt.Errorf("sqlite: update resource: %w", err)
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
// events, replicas (as the source) and revocations.
func (s *Store) DeleteResource(ctx context.Context, arn string, check func(r *store.Resource, referrers []*store.Resource) error) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		r, err := getResource(ctx, tx, arn)
		if err != nil {
			return err
		}
		// A resource naming itself is not its own referrer.
		referrers, err := queryResources(ctx, tx, `SELECT `+resourceColumns+` FROM resources
WHERE arn IN (SELECT arn FROM resource_refs WHERE ref = ?) AND arn <> ?
ORDER BY seq`, arn, arn)
		if err != nil {
			return err
		}
		if check != nil {
			if err := check(r, referrers); err != nil {
				return err
			}
		}
		// resource_refs and the stage's session data go by ON DELETE
		// CASCADE.
		if _, err := tx.ExecContext(ctx, `DELETE FROM resources WHERE arn = ?`, arn); err != nil {
			return fmt.Errorf("sqlite: delete resource: %w", err)
		}
		return nil
	})
}

// ListResources implements store.Store. Page.Limit <= 0 lists every row.
func (s *Store) ListResources(ctx context.Context, q store.ResourceQuery) ([]*store.Resource, error) {
	var b strings.Builder
	b.WriteString(`SELECT ` + resourceColumns + ` FROM resources WHERE kind = ? AND owner = ?`)
	args := []any{q.Kind, q.Owner}
	if q.State != "" {
		b.WriteString(` AND state = ?`)
		args = append(args, q.State)
	}
	if q.Ref != "" {
		// IN, not a join: a resource may name the same ARN twice.
		b.WriteString(` AND arn IN (SELECT arn FROM resource_refs WHERE ref = ?)`)
		args = append(args, q.Ref)
	}
	if q.ClientToken != "" {
		b.WriteString(` AND client_token = ?`)
		args = append(args, q.ClientToken)
	}
	return s.listResources(ctx, b.String(), args, q.Page)
}

// ScanResources implements store.Store. Page.Limit <= 0 lists every row.
func (s *Store) ScanResources(ctx context.Context, q store.ResourceScan) ([]*store.Resource, error) {
	var b strings.Builder
	b.WriteString(`SELECT ` + resourceColumns + ` FROM resources WHERE kind = ?`)
	args := []any{q.Kind}
	if len(q.States) > 0 {
		b.WriteString(` AND state IN (?` + strings.Repeat(`, ?`, len(q.States)-1) + `)`)
		for _, st := range q.States {
			args = append(args, st)
		}
	}
	if q.Node != "" {
		b.WriteString(` AND node = ?`)
		args = append(args, q.Node)
	}
	return s.listResources(ctx, b.String(), args, q.Page)
}

func (s *Store) listResources(ctx context.Context, query string, args []any, p store.Page) ([]*store.Resource, error) {
	query, args = paged(query, args, p, false)

	var rs []*store.Resource
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		rs, err = queryResources(ctx, tx, query, args...)
		return err
	})
	return rs, err
}

// CountResources implements store.Store.
func (s *Store) CountResources(ctx context.Context, kind, owner string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx,
		`SELECT COUNT(*) FROM resources WHERE kind = ? AND owner = ?`, kind, owner).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count resources: %w", err)
	}
	return n, nil
}

func getResource(ctx context.Context, q querier, arn string) (*store.Resource, error) {
	rs, err := queryResources(ctx, q, `SELECT `+resourceColumns+` FROM resources WHERE arn = ?`, arn)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, notFound("resource", arn)
	}
	return rs[0], nil
}

// queryResources runs query, which selects resourceColumns, and loads the
// resulting resources' Refs. q should be a transaction, so that rows and
// references come from one snapshot.
func queryResources(ctx context.Context, q querier, query string, args ...any) ([]*store.Resource, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: query resources: %w", err)
	}
	defer rows.Close()
	var rs []*store.Resource
	for rows.Next() {
		var r store.Resource
		var created int64
		if err := rows.Scan(&r.Seq, &r.ARN, &r.Kind, &r.Owner, &r.State, &r.ActiveSessionID, &r.Node, &r.ClientToken, &r.Doc, &created); err != nil {
			return nil, fmt.Errorf("sqlite: scan resource: %w", err)
		}
		r.CreatedAt = fromMillis(created)
		rs = append(rs, &r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: query resources: %w", err)
	}
	rows.Close()
	if err := loadRefs(ctx, q, rs); err != nil {
		return nil, err
	}
	return rs, nil
}

// refsBatch bounds the number of parameters in one IN list, well under
// SQLite's (and PostgreSQL's) limits.
const refsBatch = 500

// loadRefs sets the Refs of rs.
func loadRefs(ctx context.Context, q querier, rs []*store.Resource) error {
	byARN := make(map[string]*store.Resource, len(rs))
	for _, r := range rs {
		byARN[r.ARN] = r
	}
	for start := 0; start < len(rs); start += refsBatch {
		batch := rs[start:min(start+refsBatch, len(rs))]
		args := make([]any, len(batch))
		for i, r := range batch {
			args[i] = r.ARN
		}
		query := `SELECT arn, ref FROM resource_refs WHERE arn IN (?` +
			strings.Repeat(`, ?`, len(batch)-1) + `) ORDER BY arn, pos`
		if err := func() error {
			rows, err := q.QueryContext(ctx, query, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var arn, ref string
				if err := rows.Scan(&arn, &ref); err != nil {
					return err
				}
				if r := byARN[arn]; r != nil {
					r.Refs = append(r.Refs, ref)
				}
			}
			return rows.Err()
		}(); err != nil {
			return fmt.Errorf("sqlite: load refs: %w", err)
		}
	}
	return nil
}

func insertRefs(ctx context.Context, tx *sql.Tx, arn string, refs []string) error {
	for i, ref := range refs {
		if _, err := tx.ExecContext(ctx,
			`INSERT INTO resource_refs (arn, pos, ref) VALUES (?, ?, ?)`, arn, i, ref); err != nil {
			return fmt.Errorf("sqlite: insert refs: %w", err)
		}
	}
	return nil
}

func cloneResource(r *store.Resource) *store.Resource {
	c := *r
	c.Refs = append([]string(nil), r.Refs...)
	c.Doc = append([]byte(nil), r.Doc...)
	return &c
}
