package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/rostrum-dev/rostrum/internal/cluster"
	"github.com/rostrum-dev/rostrum/internal/composition"
	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/sigv4"
	"github.com/rostrum-dev/rostrum/internal/stage"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// clusterNode is this node's part among the nodes that share its
// PostgreSQL database (internal/cluster); nil on SQLite, where a node is
// alone.
type clusterNode struct {
	c     *cluster.Cluster
	relay *cluster.EventRelay
	cfg   *config.Config
	log   *slog.Logger
	// closing: nodes whose sessions this node is ending (it took their
	// stages over), so that one dead node is closed once at a time.
	closing sync.Map
	// comps runs this node's compositions; set before the cluster starts.
	comps *composition.Manager
}

// openCluster joins the cluster when the database is PostgreSQL. base is
// this node's own URL (--public-url), where the others forward to it.
func openCluster(ctx context.Context, cfg *config.Config, node, base string, log *slog.Logger) (*clusterNode, error) {
	if cfg.DatabaseURL == "" {
		return nil, nil
	}
	c, err := cluster.Open(ctx, cluster.Config{
		DatabaseURL:    cfg.DatabaseURL,
		NodeID:         node,
		URL:            base,
		Lease:          cfg.Cluster.Lease,
		MaxPublishers:  cfg.Cluster.MaxPublishers,
		MaxSubscribers: cfg.Cluster.MaxSubscribers,
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	if u, err := url.Parse(base); err == nil {
		lhost, _, _ := net.SplitHostPort(cfg.Listen)
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback() || u.Hostname() == "localhost") && !isLoopbackHost(lhost) {
			// Forwarded signalling would go to the other node's own loopback.
			log.Warn("this node's --public-url is a loopback address: other nodes sharing the database cannot forward to it; set --public-url to an address they reach",
				"public_url", base, "node", node)
		}
	}
	return &clusterNode{c: c, relay: cluster.NewEventRelay(c), cfg: cfg, log: log}, nil
}

func isLoopbackHost(h string) bool {
	ip := net.ParseIP(h)
	return h == "localhost" || (ip != nil && ip.IsLoopback())
}

// busOptions makes the event bus share the outbox with the other nodes:
// one node at a time delivers a sink, and the live streams get every
// node's events.
func (cn *clusterNode) busOptions(ec *events.Config) {
	if cn == nil {
		return
	}
	ec.Claim = cn.c.TryClaim
	ec.Relay = cn.relay.Send
}

// attach connects the cluster to this node's bus and media plane and
// returns the media plane the service drives.
func (cn *clusterNode) attach(bus *events.Bus, stages *stage.Manager) ivs.MediaPlane {
	if cn == nil {
		return stages
	}
	cn.relay.SetBus(bus)
	cn.c.SetLoad(func() cluster.Load {
		l := stages.Load()
		// A stage whose composition runs here stays here, even while
		// nobody is in it: the composition waits for its publishers.
		live := l.Stages
		if cn.comps != nil {
			for _, arn := range cn.comps.Stages() {
				if !slices.Contains(live, arn) {
					live = append(live, arn)
				}
			}
		}
		return cluster.Load{Stages: live, Publishers: l.Publishers, Subscribers: l.Subscribers}
	})
	cn.c.OnLost(func(arn, owner string) {
		stages.Evict(arn, "the stage moved to another node")
	})
	return cluster.NewMediaPlane(cn.c, stages)
}

// compositor is what runs compositions for the service: on a node of a
// cluster, the node that runs the composition's stage (call it before
// start).
func (cn *clusterNode) compositor(local *composition.Manager) ivs.Compositor {
	if cn == nil {
		return local
	}
	cn.comps = local
	return cluster.NewCompositor(cn.c, local)
}

// media routes the media endpoints to the node that runs each stage.
func (cn *clusterNode) media(local http.Handler, stages *stage.Manager, svc *ivs.Service) http.Handler {
	if cn == nil {
		return local
	}
	return cluster.NewForwarder(cluster.ForwarderConfig{
		Cluster: cn.c,
		Local:   local,
		StageOf: func(ctx context.Context, tok string) (string, error) {
			id, err := stages.Authenticate(ctx, tok)
			if err != nil {
				return "", err
			}
			return id.Stage.ARN, nil
		},
		Secret:   cn.cfg.SecretAccessKey,
		TookOver: func(previous string) { cn.closeNode(svc, previous) },
		Logger:   cn.log,
	})
}

// closeNode ends the sessions of a node whose stage this node took over
// (its lease expired: the node died), at once rather than after
// --node-timeout: participants DISCONNECTED and LEFT as of its last
// heartbeat. A node that still beats is left alone (store.ErrNodeAlive).
func (cn *clusterNode) closeNode(svc *ivs.Service, node string) {
	if _, busy := cn.closing.LoadOrStore(node, true); busy {
		return
	}
	go func() {
		defer cn.closing.Delete(node)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// A live node beats every --heartbeat-interval.
		n, err := svc.CloseNodeSessions(ctx, node, time.Now().Add(-2*cn.cfg.Node.Heartbeat))
		switch {
		case err == nil && n > 0:
			cn.log.Warn("took over the stages of a node that stopped; ended its sessions", "node", node, "sessions", n)
		case err != nil && !errors.Is(err, store.ErrNodeAlive):
			cn.log.Error("ending the sessions of a node whose stages were taken over", "node", node, "err", err)
		}
	}()
}

func (cn *clusterNode) start() {
	if cn != nil {
		cn.c.Start()
	}
}

// Drain makes this node take no new stage sessions and waits until the
// ones it runs have ended (or ctx ends); on a node without a cluster it
// does nothing.
func (s *Server) Drain(ctx context.Context) error {
	if s.cluster == nil {
		return nil
	}
	if err := s.cluster.c.SetDraining(ctx, true); err != nil {
		return err
	}
	s.log.Info("draining: no new stage sessions; waiting for this node's to end", "stages", len(s.Stages.Load().Stages))
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for len(s.Stages.Load().Stages) > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// nodeStatus is what GET /v1/node answers.
type nodeStatus struct {
	NodeID      string          `json:"nodeId"`
	Cluster     bool            `json:"cluster"`
	Draining    bool            `json:"draining"`
	Stages      []string        `json:"stages"`
	Publishers  int             `json:"publishers"`
	Subscribers int             `json:"subscribers"`
	Nodes       []*cluster.Node `json:"nodes,omitempty"`
}

// nodeAdmin serves GET /v1/node (this node, and every node of the
// cluster) and POST/DELETE /v1/node/drain (start or stop draining), signed
// with SigV4 and the API's credentials as API requests are.
func (s *Server) nodeAdmin(verifier *sigv4.Verifier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			http.Error(w, "could not read the body", http.StatusBadRequest)
			return
		}
		if _, err := verifier.Verify(r, body); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		switch {
		case r.URL.Path == "/v1/node" && r.Method == http.MethodGet:
		case r.URL.Path == "/v1/node/drain" && (r.Method == http.MethodPost || r.Method == http.MethodDelete):
			if s.cluster == nil {
				http.Error(w, "this node is not in a cluster (--database-url): there is nowhere else for its stages to go", http.StatusConflict)
				return
			}
			if err := s.cluster.c.SetDraining(r.Context(), r.Method == http.MethodPost); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
			s.log.Info("drain set by an admin request", "draining", r.Method == http.MethodPost)
		default:
			http.Error(w, "GET /v1/node, POST or DELETE /v1/node/drain", http.StatusNotFound)
			return
		}
		l := s.Stages.Load()
		st := nodeStatus{NodeID: s.Service.NodeID(), Stages: l.Stages, Publishers: l.Publishers, Subscribers: l.Subscribers}
		if st.Stages == nil {
			st.Stages = []string{}
		}
		if s.cluster != nil {
			st.Cluster, st.Draining = true, s.cluster.c.Draining()
			if st.Nodes, err = s.cluster.c.Nodes(r.Context()); err != nil {
				http.Error(w, err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(st)
	})
}

// releaseLeases gives this node's stages up (a clean stop).
func (cn *clusterNode) releaseLeases(ctx context.Context) {
	if cn == nil {
		return
	}
	if err := cn.c.ReleaseLeases(ctx); err != nil {
		cn.log.Warn("giving up this node's stages", "err", err)
	}
}

func (cn *clusterNode) close(ctx context.Context) error {
	if cn == nil {
		return nil
	}
	return cn.c.Close(ctx)
}
