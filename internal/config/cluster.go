package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"
)

// Cluster configures a node among several that share one PostgreSQL
// database (--database-url): stage placement, leases, draining.
type Cluster struct {
	// URL is the one address in front of every node (a load balancer):
	// participant tokens and stages' endpoints carry it instead of
	// --public-url, so that a client reconnecting after its node died
	// reaches a live one.
	URL string
	// Lease is how long a node's hold on a stage lasts without renewal:
	// within it, a dead node's stages are placed on another node.
	Lease time.Duration
	// MaxPublishers and MaxSubscribers are this node's media capacity:
	// new stage sessions go to the node with the most free capacity.
	MaxPublishers, MaxSubscribers int
	// DrainTimeout is how long a node that gets SIGTERM waits for its
	// stage sessions to end before it stops (new ones go to other nodes
	// meanwhile); 0 stops at once.
	DrainTimeout time.Duration
}

func (c *Config) clusterFlagDefs(fs *flag.FlagSet) {
	fs.StringVar(&c.Cluster.URL, "cluster-url", "", "with several nodes: the one URL in front of all of them (a load balancer), which participant tokens and stage endpoints carry instead of --public-url")
	fs.DurationVar(&c.Cluster.Lease, "stage-lease", 10*time.Second, "with several nodes: how long a node holds a stage without renewing (it renews every third of it); a dead node's stages move to another node within it")
	fs.IntVar(&c.Cluster.MaxPublishers, "max-node-publishers", 500, "publishing connections this node carries at most, for placing stage sessions on the node with the most free capacity")
	fs.IntVar(&c.Cluster.MaxSubscribers, "max-node-subscribers", 5000, "subscriptions this node carries at most, for placing stage sessions on the node with the most free capacity")
	fs.DurationVar(&c.Cluster.DrainTimeout, "drain-timeout", 0, "with several nodes: on SIGTERM, take no new stage sessions and wait this long for this node's sessions to end before stopping (0: stop at once; the participants reconnect to other nodes)")
}

func (c *Config) validateCluster() error {
	var errs []error
	if c.Cluster.URL != "" {
		u, err := url.Parse(c.Cluster.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--cluster-url %q: must be an absolute http or https URL", c.Cluster.URL))
		}
	}
	if c.Cluster.Lease < 300*time.Millisecond {
		errs = append(errs, fmt.Errorf("--stage-lease %v: must be at least 300ms", c.Cluster.Lease))
	}
	if c.Cluster.MaxPublishers < 1 || c.Cluster.MaxSubscribers < 1 {
		errs = append(errs, fmt.Errorf("--max-node-publishers %d, --max-node-subscribers %d: must be positive", c.Cluster.MaxPublishers, c.Cluster.MaxSubscribers))
	}
	if c.Cluster.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("--drain-timeout %v: must not be negative", c.Cluster.DrainTimeout))
	}
	return errors.Join(errs...)
}

// DefaultNodeID is the node id when --node-id is not set: the host name
// and the port of --listen ("media-1:8080"), which stay the same across
// restarts. It is "" when the port is chosen at start (--listen :0) or
// the host has no usable name: the caller then generates an id and keeps
// it.
func (c *Config) DefaultNodeID() string {
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil || port == "" || port == "0" {
		return ""
	}
	host, err := os.Hostname()
	if err != nil {
		return ""
	}
	id := host + ":" + port
	if !nodeIDRE.MatchString(id) {
		return ""
	}
	return id
}
