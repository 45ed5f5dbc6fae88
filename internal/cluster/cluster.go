// Package cluster lets several Rostrum nodes share one PostgreSQL database:
// which node runs each stage session (a lease in the database, renewed
// while the node lives and taken over when it expires), where a new
// session goes (the node with the most free media capacity, never a
// draining one), messages between nodes (PostgreSQL LISTEN/NOTIFY: no
// other broker) and claims that let one node at a time do a piece of
// shared work (delivering a sink's events).
//
// Every time it compares is the database's clock (clock_timestamp()), so
// nodes whose clocks disagree still agree on which lease has expired.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Advisory lock namespaces of this package (the store uses 1 to 3).
const (
	lockSchema = 100 // second key 0: creating the tables
	lockStage  = 101 // hashtext(stage ARN): one placement of a stage at a time
	lockClaim  = 102 // hashtext(key): session-level, a node's claim
)

// dbNow is the database's clock in unix milliseconds. clock_timestamp, not
// now(): a transaction's now() is its start, and a lease is compared with
// the time it is read.
const dbNow = `(extract(epoch from clock_timestamp()) * 1000)::bigint`

// DefaultLease is how long a stage's lease lasts without renewal: how long
// a dead node's stages wait before another node takes them.
const DefaultLease = 10 * time.Second

// Config configures a node's part in the cluster.
type Config struct {
	DatabaseURL string
	// NodeID names this node; URL is where the other nodes reach it
	// (its --public-url): forwarded signalling goes there.
	NodeID string
	URL    string
	// Lease is how long a stage lease lasts unless renewed; the node
	// renews its leases (and says it is alive) every Lease/3.
	Lease time.Duration
	// MaxPublishers and MaxSubscribers are this node's media capacity,
	// against which its free capacity is measured for placement.
	MaxPublishers, MaxSubscribers int
	Logger                        *slog.Logger
}

// Load is what a node carries now: the stages live on it and their
// publishers and subscribers.
type Load struct {
	Stages      []string // stage ARNs
	Publishers  int
	Subscribers int
}

// Node is one node as the others see it.
type Node struct {
	ID             string `json:"id"`
	URL            string `json:"url"`
	Publishers     int    `json:"publishers"`
	Subscribers    int    `json:"subscribers"`
	MaxPublishers  int    `json:"maxPublishers"`
	MaxSubscribers int    `json:"maxSubscribers"`
	Draining       bool   `json:"draining"`
	// SeenAt is the node's last renewal; Stages how many leases it holds.
	SeenAt time.Time `json:"seenAt"`
	Stages int       `json:"stages"`
	// Alive: renewed within the lease time.
	Alive bool `json:"alive"`
}

// Cluster is this node's membership.
type Cluster struct {
	cfg  Config
	pool *pgxpool.Pool
	log  *slog.Logger

	load     atomic.Pointer[func() Load]
	lost     atomic.Pointer[func(stageARN, owner string)]
	draining atomic.Bool

	mu       sync.Mutex
	handlers map[string]func(from, body string)
	listen   *pgx.Conn // the LISTEN connection, while connected

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// ErrClosed: the cluster membership has ended.
var ErrClosed = errors.New("cluster: closed")

// Open connects to the database, creates the cluster's tables if needed
// and records this node. Start begins the renewals and the listener.
func Open(ctx context.Context, cfg Config) (*Cluster, error) {
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.NodeID == "" || cfg.URL == "" {
		return nil, errors.New("cluster: a node id and URL are required")
	}
	pc, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, errors.New("cluster: the database URL does not parse")
	}
	// Renewals, placements and notifications, plus one connection per
	// held claim (a session-level lock lives on its connection).
	pc.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := createTables(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{cfg: cfg, pool: pool, log: cfg.Logger, handlers: map[string]func(string, string){}, ctx: cctx, cancel: cancel}
	if err := c.renew(ctx); err != nil {
		cancel()
		pool.Close()
		return nil, err
	}
	return c, nil
}

func createTables(ctx context.Context, pool *pgxpool.Pool) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("cluster: begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	// Nodes starting together create the tables once: CREATE … IF NOT
	// EXISTS alone races on the catalog.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, 0)`, lockSchema); err != nil {
		return fmt.Errorf("cluster: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `
CREATE TABLE IF NOT EXISTS cluster_nodes (
	node_id         text PRIMARY KEY,
	url             text NOT NULL,
	publishers      integer NOT NULL DEFAULT 0,
	subscribers     integer NOT NULL DEFAULT 0,
	max_publishers  integer NOT NULL,
	max_subscribers integer NOT NULL,
	draining        boolean NOT NULL DEFAULT false,
	seen_at         bigint NOT NULL
);
CREATE TABLE IF NOT EXISTS stage_leases (
	stage_arn   text PRIMARY KEY,
	node_id     text NOT NULL,
	expires_at  bigint NOT NULL,
	acquired_at bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS stage_leases_node ON stage_leases (node_id);`); err != nil {
		return fmt.Errorf("cluster: create tables: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("cluster: commit: %w", err)
	}
	return nil
}

// NodeID is this node's id.
func (c *Cluster) NodeID() string { return c.cfg.NodeID }

// Lease is the lease time.
func (c *Cluster) Lease() time.Duration { return c.cfg.Lease }

// SetLoad tells the cluster how to read this node's load (the stage
// layer's live stages); call it before Start.
func (c *Cluster) SetLoad(f func() Load) { c.load.Store(&f) }

// OnLost is called, from the renewal loop, for each stage live on this
// node whose lease another node holds now (this node could not renew it
// in time): the node must let the stage go, so that its participants
// reconnect to the owner.
func (c *Cluster) OnLost(f func(stageARN, owner string)) { c.lost.Store(&f) }

// Start begins renewing this node's leases and listening for other nodes'
// messages.
func (c *Cluster) Start() {
	c.wg.Add(2)
	go c.renewals()
	go c.listener()
}

// Close stops the renewals and listener, gives up this node's leases (its
// stages may be placed elsewhere at once: a clean stop must not make them
// wait for the lease to expire) and marks the node gone.
func (c *Cluster) Close(ctx context.Context) error {
	var err error
	c.once.Do(func() {
		c.cancel()
		c.wg.Wait()
		if _, e := c.pool.Exec(ctx, `DELETE FROM stage_leases WHERE node_id = $1`, c.cfg.NodeID); e != nil {
			err = fmt.Errorf("cluster: giving up leases: %w", e)
		}
		if _, e := c.pool.Exec(ctx, `DELETE FROM cluster_nodes WHERE node_id = $1`, c.cfg.NodeID); e != nil {
			err = errors.Join(err, fmt.Errorf("cluster: leaving: %w", e))
		}
		c.pool.Close()
	})
	return err
}

// SetDraining makes this node take no new stage sessions (true) or take
// them again (false); the stages it runs stay on it until they end.
func (c *Cluster) SetDraining(ctx context.Context, on bool) error {
	c.draining.Store(on)
	return c.renew(ctx)
}

// Draining reports whether this node is draining.
func (c *Cluster) Draining() bool { return c.draining.Load() }

func (c *Cluster) currentLoad() Load {
	if f := c.load.Load(); f != nil {
		return (*f)()
	}
	return Load{}
}

func (c *Cluster) renewals() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if err := c.renew(c.ctx); err != nil && c.ctx.Err() == nil {
			c.log.Error("renewing this node's stage leases", "node", c.cfg.NodeID, "err", err)
		}
	}
}

// renew records this node's load and that it is alive, extends the leases
// of its live stages (and of those placed on it within the last lease
// time, whose first participant may still be on its way), lets go of the
// others, and finds the live stages another node has taken.
func (c *Cluster) renew(ctx context.Context) error {
	load := c.currentLoad()
	live := load.Stages
	if live == nil {
		live = []string{}
	}
	lease := c.cfg.Lease.Milliseconds()
	b := &pgx.Batch{}
	b.Queue(`
INSERT INTO cluster_nodes (node_id, url, publishers, subscribers, max_publishers, max_subscribers, draining, seen_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, `+dbNow+`)
ON CONFLICT (node_id) DO UPDATE SET url = excluded.url, publishers = excluded.publishers,
	subscribers = excluded.subscribers, max_publishers = excluded.max_publishers,
	max_subscribers = excluded.max_subscribers, draining = excluded.draining, seen_at = excluded.seen_at`,
		c.cfg.NodeID, c.cfg.URL, load.Publishers, load.Subscribers, c.cfg.MaxPublishers, c.cfg.MaxSubscribers, c.draining.Load())
	b.Queue(`UPDATE stage_leases SET expires_at = `+dbNow+` + $2
WHERE node_id = $1 AND (stage_arn = ANY($3) OR acquired_at > `+dbNow+` - $2)`, c.cfg.NodeID, lease, live)
	b.Queue(`DELETE FROM stage_leases
WHERE node_id = $1 AND NOT (stage_arn = ANY($3)) AND acquired_at <= `+dbNow+` - $2`, c.cfg.NodeID, lease, live)
	// A live stage without a lease (its lease was given up while a
	// participant joined) gets one again.
	b.Queue(`INSERT INTO stage_leases (stage_arn, node_id, expires_at, acquired_at)
SELECT a, $1, `+dbNow+` + $2, `+dbNow+` FROM unnest($3::text[]) a
ON CONFLICT (stage_arn) DO NOTHING`, c.cfg.NodeID, lease, live)
	b.Queue(`SELECT stage_arn, node_id FROM stage_leases WHERE stage_arn = ANY($1) AND node_id <> $2`, live, c.cfg.NodeID)
	br := c.pool.SendBatch(ctx, b)
	defer br.Close()
	for i := 0; i < 4; i++ {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("cluster: renew: %w", err)
		}
	}
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("cluster: renew: %w", err)
	}
	type moved struct{ arn, owner string }
	var lost []moved
	for rows.Next() {
		var m moved
		if err := rows.Scan(&m.arn, &m.owner); err != nil {
			rows.Close()
			return fmt.Errorf("cluster: renew: %w", err)
		}
		lost = append(lost, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cluster: renew: %w", err)
	}
	if f := c.lost.Load(); f != nil {
		for _, m := range lost {
			c.log.Warn("a stage of this node is now held by another node (this node could not renew its lease in time); letting it go",
				"stage", m.arn, "owner", m.owner)
			(*f)(m.arn, m.owner)
		}
	}
	return nil
}

// Placement is where a stage's session runs.
type Placement struct {
	Node Node
	// Self: this node.
	Self bool
	// Previous is the node whose expired lease this placement took over
	// (it stopped renewing: dead, or cut off from the database), else "".
	Previous string
}

const nodeColumns = `n.node_id, n.url, n.publishers, n.subscribers, n.max_publishers, n.max_subscribers, n.draining, n.seen_at,
	(SELECT COUNT(*) FROM stage_leases l WHERE l.node_id = n.node_id AND l.expires_at > ` + dbNow + `),
	n.seen_at > ` + dbNow + ` - $1`

func scanNode(row pgx.Row) (*Node, error) {
	var n Node
	var seen int64
	var stages int64
	if err := row.Scan(&n.ID, &n.URL, &n.Publishers, &n.Subscribers, &n.MaxPublishers, &n.MaxSubscribers, &n.Draining, &seen, &stages, &n.Alive); err != nil {
		return nil, err
	}
	n.SeenAt = time.UnixMilli(seen).UTC()
	n.Stages = int(stages)
	return &n, nil
}

// Place returns the node that runs the stage's session: the holder of its
// lease while the lease is valid (or its holder still renews), else the
// alive, not draining node with the most free capacity, which gets the
// lease for a lease time from now.
func (c *Cluster) Place(ctx context.Context, stageARN string) (*Placement, error) {
	lease := c.cfg.Lease.Milliseconds()
	var out *Placement
	err := pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		out = nil
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockStage, stageARN); err != nil {
			return err
		}
		var holder string
		var valid bool
		err := tx.QueryRow(ctx, `SELECT node_id, expires_at > `+dbNow+` FROM stage_leases WHERE stage_arn = $1`, stageARN).Scan(&holder, &valid)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		var chosen *Node
		if holder != "" {
			n, err := scanNode(tx.QueryRow(ctx, `SELECT `+nodeColumns+` FROM cluster_nodes n WHERE n.node_id = $2`, lease, holder))
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			// The holder keeps its stage while the lease is valid, or
			// while it still renews (a lease a moment past expiry on a
			// live node) unless it drains.
			if n != nil && (valid || (n.Alive && !n.Draining)) {
				chosen = n
			}
		}
		if chosen == nil {
			// Free capacity: subscribers dominate what a node sends, so
			// free subscriber slots first, then free publisher slots, then
			// the fewest stages; a full node only if every node is.
			n, err := scanNode(tx.QueryRow(ctx, `SELECT `+nodeColumns+` FROM cluster_nodes n
WHERE n.seen_at > `+dbNow+` - $1 AND NOT n.draining
ORDER BY (n.subscribers >= n.max_subscribers OR n.publishers >= n.max_publishers),
	n.max_subscribers - n.subscribers DESC, n.max_publishers - n.publishers DESC, 9, n.node_id
LIMIT 1`, lease))
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if n == nil {
				// Every node drains (or none has renewed lately): this
				// one runs the session rather than refuse it.
				n, err = scanNode(tx.QueryRow(ctx, `SELECT `+nodeColumns+` FROM cluster_nodes n WHERE n.node_id = $2`, lease, c.cfg.NodeID))
				if err != nil {
					return err
				}
			}
			chosen = n
		}
		if holder == chosen.ID && chosen.ID != c.cfg.NodeID {
			// Another node keeps its stage. Only its renewals extend the
			// lease (so that a dead node's lease runs out however often
			// its stage is asked for); the touch keeps the holder from
			// letting go of a lease whose first participant is on its way.
			if _, err := tx.Exec(ctx, `UPDATE stage_leases SET acquired_at = `+dbNow+` WHERE stage_arn = $1`, stageARN); err != nil {
				return err
			}
		} else if _, err := tx.Exec(ctx, `INSERT INTO stage_leases (stage_arn, node_id, expires_at, acquired_at)
VALUES ($1, $2, `+dbNow+` + $3, `+dbNow+`)
ON CONFLICT (stage_arn) DO UPDATE SET node_id = excluded.node_id, expires_at = excluded.expires_at, acquired_at = excluded.acquired_at`,
			stageARN, chosen.ID, lease); err != nil {
			return err
		}
		out = &Placement{Node: *chosen, Self: chosen.ID == c.cfg.NodeID}
		if holder != "" && holder != chosen.ID {
			out.Previous = holder
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: placing stage %s: %w", stageARN, err)
	}
	if out.Previous != "" {
		c.log.Warn("stage placed on another node: its lease expired", "stage", stageARN, "previous", out.Previous, "node", out.Node.ID)
	}
	return out, nil
}

// Claim takes the stage's lease for this node, unless another node runs
// the stage (holds a valid lease, or still renews it): then it returns
// that node's id. It is for what arrives at one node and cannot be
// forwarded, an RTMP push.
func (c *Cluster) Claim(ctx context.Context, stageARN string) (here bool, holder string, err error) {
	lease := c.cfg.Lease.Milliseconds()
	err = pgx.BeginFunc(ctx, c.pool, func(tx pgx.Tx) error {
		here, holder = false, ""
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockStage, stageARN); err != nil {
			return err
		}
		var valid bool
		err := tx.QueryRow(ctx, `SELECT node_id, expires_at > `+dbNow+` FROM stage_leases WHERE stage_arn = $1`, stageARN).Scan(&holder, &valid)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if holder != "" && holder != c.cfg.NodeID {
			n, err := scanNode(tx.QueryRow(ctx, `SELECT `+nodeColumns+` FROM cluster_nodes n WHERE n.node_id = $2`, lease, holder))
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if n != nil && (valid || (n.Alive && !n.Draining)) {
				return nil
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO stage_leases (stage_arn, node_id, expires_at, acquired_at)
VALUES ($1, $2, `+dbNow+` + $3, `+dbNow+`)
ON CONFLICT (stage_arn) DO UPDATE SET node_id = excluded.node_id, expires_at = excluded.expires_at, acquired_at = excluded.acquired_at`,
			stageARN, c.cfg.NodeID, lease)
		here, holder = err == nil, c.cfg.NodeID
		return err
	})
	if err != nil {
		return false, "", fmt.Errorf("cluster: claiming stage %s: %w", stageARN, err)
	}
	return here, holder, nil
}

// Owner returns the node holding the stage's valid lease, without placing
// it; nil if none does.
func (c *Cluster) Owner(ctx context.Context, stageARN string) (*Node, error) {
	n, err := scanNode(c.pool.QueryRow(ctx, `SELECT `+nodeColumns+` FROM cluster_nodes n
JOIN stage_leases l ON l.node_id = n.node_id WHERE l.stage_arn = $2 AND l.expires_at > `+dbNow, c.cfg.Lease.Milliseconds(), stageARN))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: owner of %s: %w", stageARN, err)
	}
	return n, nil
}

// Node returns a node by id (nil if unknown).
func (c *Cluster) Node(ctx context.Context, id string) (*Node, error) {
	n, err := scanNode(c.pool.QueryRow(ctx, `SELECT `+nodeColumns+` FROM cluster_nodes n WHERE n.node_id = $2`, c.cfg.Lease.Milliseconds(), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster: node %s: %w", id, err)
	}
	return n, nil
}

// Nodes lists the nodes, by id.
func (c *Cluster) Nodes(ctx context.Context) ([]*Node, error) {
	rows, err := c.pool.Query(ctx, `SELECT `+nodeColumns+` FROM cluster_nodes n ORDER BY n.node_id`, c.cfg.Lease.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("cluster: nodes: %w", err)
	}
	defer rows.Close()
	var out []*Node
	for rows.Next() {
		n, err := scanNode(rows)
		if err != nil {
			return nil, fmt.Errorf("cluster: nodes: %w", err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// validChannel keeps channel names to what LISTEN takes unquoted.
func validChannel(ch string) bool {
	if ch == "" || len(ch) > 63 {
		return false
	}
	for _, r := range ch {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9')) {
			return false
		}
	}
	return true
}

// maxPayload is what NOTIFY carries (8000 bytes), less the sender's id.
const maxPayload = 7900

// ErrTooLarge: a message is larger than NOTIFY carries.
var ErrTooLarge = errors.New("cluster: message too large for NOTIFY")

// Notify sends body to every node listening on channel (this one's
// handler is not called: the sender acts on its own).
func (c *Cluster) Notify(ctx context.Context, channel, body string) error {
	if !validChannel(channel) {
		return fmt.Errorf("cluster: invalid channel %q", channel)
	}
	msg := c.cfg.NodeID + "\n" + body
	if len(msg) > maxPayload {
		return ErrTooLarge
	}
	if _, err := c.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, msg); err != nil {
		return fmt.Errorf("cluster: notify %s: %w", channel, err)
	}
	return nil
}

// Handle registers the handler of a channel's messages from other nodes;
// call it before Start. Handlers run one at a time, on the listener.
func (c *Cluster) Handle(channel string, f func(from, body string)) {
	if !validChannel(channel) {
		panic("cluster: invalid channel " + channel)
	}
	c.mu.Lock()
	c.handlers[channel] = f
	c.mu.Unlock()
}

// listener holds a connection LISTENing on every handled channel and
// dispatches what arrives; a lost connection is made again (messages sent
// meanwhile are lost: handlers are for what is also in the database or
// may be missed, like a live event or a kick that the revocation also
// enforces).
func (c *Cluster) listener() {
	defer c.wg.Done()
	for c.ctx.Err() == nil {
		err := c.listenOnce()
		if c.ctx.Err() != nil {
			return
		}
		c.log.Warn("the cluster's notification connection was lost; reconnecting", "err", err)
		select {
		case <-c.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (c *Cluster) listenOnce() error {
	conn, err := c.pool.Acquire(c.ctx)
	if err != nil {
		return err
	}
	// The connection LISTENs: it never goes back to the pool.
	pc := conn.Hijack()
	defer pc.Close(context.WithoutCancel(c.ctx))
	c.mu.Lock()
	var channels []string
	for ch := range c.handlers {
		channels = append(channels, ch)
	}
	c.mu.Unlock()
	for _, ch := range channels {
		if _, err := pc.Exec(c.ctx, "LISTEN "+ch); err != nil {
			return err
		}
	}
	for {
		n, err := pc.WaitForNotification(c.ctx)
		if err != nil {
			return err
		}
		from, body, _ := strings.Cut(n.Payload, "\n")
		if from == c.cfg.NodeID {
			continue
		}
		c.mu.Lock()
		f := c.handlers[n.Channel]
		c.mu.Unlock()
		if f != nil {
			f(from, body)
		}
	}
}

// ReleaseLeases gives up this node's stage leases now (a node stopping
// cleanly, whose participants reconnect at once and must find their
// stages placeable) and takes no new sessions from then on.
func (c *Cluster) ReleaseLeases(ctx context.Context) error {
	c.draining.Store(true)
	if _, err := c.pool.Exec(ctx, `UPDATE cluster_nodes SET draining = true WHERE node_id = $1`, c.cfg.NodeID); err != nil {
		return fmt.Errorf("cluster: drain: %w", err)
	}
	if _, err := c.pool.Exec(ctx, `DELETE FROM stage_leases WHERE node_id = $1`, c.cfg.NodeID); err != nil {
		return fmt.Errorf("cluster: giving up leases: %w", err)
	}
	return nil
}
