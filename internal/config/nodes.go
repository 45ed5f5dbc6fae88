package config

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"time"
)

// Node configures what this server records about itself so that the
// sessions it runs are ended even if it dies (README, "After a crash").
type Node struct {
	// ID names this node as the owner of the sessions it runs; empty: an
	// id generated on first start and kept in the database.
	ID string
	// Heartbeat is how often the node records that it is alive; a crashed
	// node's sessions end at its last heartbeat (or later activity).
	Heartbeat time.Duration
	// Timeout is how long after its last heartbeat another node sharing
	// the database takes a node for dead and ends its sessions.
	Timeout time.Duration
}

// Retention configures how long ended stage sessions are kept.
type Retention struct {
	// Sessions is how long an ended session, its participants and their
	// events stay listable; 0 keeps them for ever.
	Sessions time.Duration
	// Sweep is how often expired sessions are looked for.
	Sweep time.Duration
}

// DefaultSessionRetention is 60 days: IVS documents no retention for
// stage sessions; 60 days is how long IVS keeps a channel's stream
// sessions listable (ListStreamSessions), its nearest documented
// counterpart.
const DefaultSessionRetention = 60 * 24 * time.Hour

func (c *Config) nodeFlagDefs(fs *flag.FlagSet) {
	fs.StringVar(&c.Node.ID, "node-id", "", "`name` of this node, owner of the stage sessions it runs; each node sharing one database needs its own (default: host name and --listen port, e.g. media-1:8080; with --listen port 0, generated on first start and kept)")
	fs.DurationVar(&c.Node.Heartbeat, "heartbeat-interval", 5*time.Second, "how often this node records that it is alive; after a crash its sessions end at its last heartbeat")
	fs.DurationVar(&c.Node.Timeout, "node-timeout", 30*time.Second, "how long without a heartbeat before another node sharing the database ends a node's sessions")
	fs.DurationVar(&c.Retention.Sessions, "session-retention", DefaultSessionRetention, "how long ended stage sessions, their participants and events stay listable (0: for ever)")
	fs.DurationVar(&c.Retention.Sweep, "retention-sweep-interval", 10*time.Minute, "how often expired stage sessions are deleted")
}

var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func (c *Config) validateNode() error {
	var errs []error
	if c.Node.ID != "" && !nodeIDRE.MatchString(c.Node.ID) {
		errs = append(errs, fmt.Errorf("--node-id %q: 1 to 128 letters, digits, '.', '_', ':' or '-'", c.Node.ID))
	}
	if c.Node.Heartbeat <= 0 {
		errs = append(errs, fmt.Errorf("--heartbeat-interval %v: must be positive", c.Node.Heartbeat))
	}
	if c.Node.Timeout < 2*c.Node.Heartbeat {
		errs = append(errs, fmt.Errorf("--node-timeout %v: must be at least twice --heartbeat-interval (%v), or live nodes would be taken for dead", c.Node.Timeout, c.Node.Heartbeat))
	}
	if c.Retention.Sessions < 0 {
		errs = append(errs, fmt.Errorf("--session-retention %v: must not be negative (0 keeps sessions for ever)", c.Retention.Sessions))
	}
	if c.Retention.Sweep <= 0 {
		errs = append(errs, fmt.Errorf("--retention-sweep-interval %v: must be positive", c.Retention.Sweep))
	}
	return errors.Join(errs...)
}
