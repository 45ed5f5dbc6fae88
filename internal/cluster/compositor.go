package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/rostrum-dev/rostrum/internal/composition"
	"github.com/rostrum-dev/rostrum/internal/ivs"
)

// A composition follows its stage through the stage layer of the node that
// runs the stage's sessions, so it runs on that node: StartComposition on
// any node places the stage (taking its lease if nobody holds it) and tells
// the chosen node to start the composition; StopComposition on any node
// tells the node that runs it. The node that runs a composition keeps its
// stage's lease while it runs (Load.Stages), so that participants who join
// later are sent there.

const compositionChannel = "rostrum_compositions"

type compositionMessage struct {
	Op   string            `json:"op"` // "start" | "stop"
	Node string            `json:"node"`
	Spec *composition.Spec `json:"spec,omitempty"`
	ARN  string            `json:"arn,omitempty"`
}

// Compositor is ivs.ClusterCompositor over this node's composition
// Manager.
type Compositor struct {
	c     *Cluster
	local *composition.Manager
}

var _ ivs.ClusterCompositor = (*Compositor)(nil)

// NewCompositor wraps this node's composition Manager; call it before
// Start.
func NewCompositor(c *Cluster, local *composition.Manager) *Compositor {
	cc := &Compositor{c: c, local: local}
	c.Handle(compositionChannel, cc.receive)
	return cc
}

// NodeFor implements ivs.ClusterCompositor: the node that runs the stage
// (placed now if none does).
func (cc *Compositor) NodeFor(ctx context.Context, stageARN string) (string, error) {
	p, err := cc.c.Place(ctx, stageARN)
	if err != nil {
		return "", err
	}
	return p.Node.ID, nil
}

// Start implements ivs.Compositor.
func (cc *Compositor) Start(spec composition.Spec) error {
	ctx, cancel := context.WithTimeout(cc.c.ctx, cc.c.cfg.Lease)
	defer cancel()
	node, err := cc.NodeFor(ctx, spec.StageARN)
	if err != nil {
		return err
	}
	if node == cc.c.cfg.NodeID {
		return cc.local.Start(spec)
	}
	return cc.tell(ctx, compositionMessage{Op: "start", Node: node, Spec: &spec})
}

// Stop implements ivs.Compositor (a composition of this node).
func (cc *Compositor) Stop(arn string) error { return cc.local.Stop(arn) }

// StopOn implements ivs.ClusterCompositor.
func (cc *Compositor) StopOn(ctx context.Context, node, arn string) error {
	if node == cc.c.cfg.NodeID {
		return cc.local.Stop(arn)
	}
	return cc.tell(ctx, compositionMessage{Op: "stop", Node: node, ARN: arn})
}

func (cc *Compositor) tell(ctx context.Context, m compositionMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := cc.c.Notify(ctx, compositionChannel, string(b)); err != nil {
		return fmt.Errorf("telling node %s: %w", m.Node, err)
	}
	return nil
}

func (cc *Compositor) receive(from, body string) {
	var m compositionMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		cc.c.log.Warn("an unreadable composition message from another node", "from", from, "err", err)
		return
	}
	if m.Node != cc.c.cfg.NodeID {
		return
	}
	switch {
	case m.Op == "start" && m.Spec != nil:
		if err := cc.local.Start(*m.Spec); err != nil {
			cc.c.log.Error("starting a composition another node placed here", "from", from, "composition", m.Spec.ARN, "err", err)
		}
	case m.Op == "stop":
		if err := cc.local.Stop(m.ARN); err != nil {
			cc.c.log.Warn("stopping a composition as another node asked", "from", from, "composition", m.ARN, "err", err)
		}
	}
}
