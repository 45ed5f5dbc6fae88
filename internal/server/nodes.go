package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// nodeIDSetting keeps the node id generated on first start.
const nodeIDSetting = "node-id"

// retentionBatch bounds the rows one retention transaction deletes, so
// that the sweep never holds the database's write lock for long: the
// media plane's writes queue behind it.
const retentionBatch = 500

// resolveNodeID is --node-id, else the host name and --listen port, else
// (port 0) the id generated on this database's first
// start (kept, so that a restarted server knows the sessions its previous
// run left).
func resolveNodeID(ctx context.Context, cfg *config.Config, st store.Store) (string, error) {
	if cfg.Node.ID != "" {
		return cfg.Node.ID, nil
	}
	if id := cfg.DefaultNodeID(); id != "" {
		return id, nil
	}
	if cfg.DatabaseURL != "" {
		return localNodeID(cfg) // database.go
	}
	var b [8]byte
	rand.Read(b[:])
	v, err := st.PutSettingIfAbsent(ctx, nodeIDSetting, []byte("node-"+hex.EncodeToString(b[:])))
	if err != nil {
		return "", fmt.Errorf("node id: %w", err)
	}
	return string(v), nil
}

// closeLeftovers ends what this node's previous run left active: the
// sessions of a process that was killed or crashed (a clean shutdown ends
// its own). Sessions from before sessions had owners ("") are this
// database's previous runs' too. It runs before the server serves, so no
// new session of this node can be mistaken for a leftover.
func closeLeftovers(ctx context.Context, svc *ivs.Service, log *slog.Logger) error {
	nodes := []string{svc.NodeID()}
	if svc.NodeID() != "" {
		nodes = append(nodes, "")
	}
	for _, node := range nodes {
		n, err := svc.CloseNodeSessions(ctx, node, time.Time{})
		if err != nil {
			return fmt.Errorf("ending the sessions the previous run left: %w", err)
		}
		if n > 0 {
			log.Warn("ended the stage sessions the previous run left active (it did not shut down cleanly)",
				"node", node, "sessions", n)
		}
	}
	// Compositions cannot outlive their node's media: those it left
	// running failed with it.
	n, err := svc.FailNodeCompositions(ctx, svc.NodeID(), leftoverCompositionReason)
	if err != nil {
		return fmt.Errorf("ending the compositions the previous run left: %w", err)
	}
	if n > 0 {
		log.Warn("the compositions the previous run left running failed with it", "node", svc.NodeID(), "compositions", n)
	}
	return svc.Heartbeat(ctx)
}

// leftoverCompositionReason is the Session Failure reason of a
// composition whose node stopped while it ran.
const leftoverCompositionReason = "The Rostrum server running the composition stopped before the composition ended."

// compositionSweep is how often ended compositions are looked for; IVS
// deletes them about 5 minutes after they end.
const compositionSweep = 30 * time.Second

// housekeeping is the node's periodic work: its heartbeat, ending the
// sessions of peers whose heartbeat stopped (nodes sharing one database),
// and the retention sweep.
type housekeeping struct {
	cfg    *config.Config
	svc    *ivs.Service
	store  store.Store
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startHousekeeping(cfg *config.Config, svc *ivs.Service, st store.Store, log *slog.Logger) *housekeeping {
	ctx, cancel := context.WithCancel(context.Background())
	h := &housekeeping{cfg: cfg, svc: svc, store: st, log: log, cancel: cancel}
	h.wg.Add(3)
	go h.heartbeats(ctx)
	go h.sweeps(ctx)
	go h.compositionSweeps(ctx)
	return h
}

// compositionSweeps deletes the compositions that ended ~5 minutes ago.
func (h *housekeeping) compositionSweeps(ctx context.Context) {
	defer h.wg.Done()
	t := time.NewTimer(0) // at start too: what ended while the server was down
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := h.svc.SweepCompositions(ctx)
		if err != nil && ctx.Err() == nil {
			h.log.Error("deleting ended compositions", "err", err)
		}
		if n > 0 {
			h.log.Info("deleted ended compositions", "compositions", n)
		}
		t.Reset(compositionSweep)
	}
}

// stop ends the work and waits for what is in flight.
func (h *housekeeping) stop() {
	h.cancel()
	h.wg.Wait()
}

func (h *housekeeping) heartbeats(ctx context.Context) {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.Node.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := h.svc.Heartbeat(ctx); err != nil && ctx.Err() == nil {
			h.log.Error("recording this node's heartbeat", "node", h.svc.NodeID(), "err", err)
		}
		h.closeDeadPeers(ctx)
	}
}

// closeDeadPeers ends the sessions of every other node whose heartbeat is
// older than --node-timeout.
func (h *housekeeping) closeDeadPeers(ctx context.Context) {
	nodes, err := h.store.ListNodes(ctx)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Error("reading the nodes' heartbeats", "err", err)
		}
		return
	}
	cut := time.Now().Add(-h.cfg.Node.Timeout)
	for _, n := range nodes {
		if n.ID == h.svc.NodeID() || !n.Heartbeat.Before(cut) {
			continue
		}
		closed, err := h.svc.CloseNodeSessions(ctx, n.ID, cut)
		switch {
		case errors.Is(err, store.ErrNodeAlive):
			// It beat again since we read it.
		case err != nil:
			if ctx.Err() == nil {
				h.log.Error("ending the sessions of a node that stopped", "node", n.ID, "err", err)
			}
		default:
			h.log.Warn("a node stopped beating; ended its stage sessions", "node", n.ID,
				"last_heartbeat", n.Heartbeat, "sessions", closed)
			if failed, err := h.svc.FailNodeCompositions(ctx, n.ID, leftoverCompositionReason); err != nil {
				if ctx.Err() == nil {
					h.log.Error("ending the compositions of a node that stopped", "node", n.ID, "err", err)
				}
			} else if failed > 0 {
				h.log.Warn("the compositions of a node that stopped failed with it", "node", n.ID, "compositions", failed)
			}
		}
	}
}

func (h *housekeeping) sweeps(ctx context.Context) {
	defer h.wg.Done()
	if h.cfg.Retention.Sessions <= 0 {
		return // kept for ever
	}
	t := time.NewTimer(0) // the first sweep at start: catch up after downtime
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := sweepExpired(ctx, h.store, time.Now().Add(-h.cfg.Retention.Sessions), retentionBatch)
		if err != nil && ctx.Err() == nil {
			h.log.Error("deleting expired stage sessions", "err", err)
		}
		if n > 0 {
			h.log.Info("deleted expired stage sessions, participants and events", "rows", n,
				"retention", h.cfg.Retention.Sessions)
		}
		t.Reset(h.cfg.Retention.Sweep)
	}
}

// sweepExpired deletes what ended before the cut-off, one bounded
// transaction at a time, and returns how many rows it deleted. Between
// batches the write lock is free for the writes that wait for it.
func sweepExpired(ctx context.Context, st store.Store, endedBefore time.Time, batch int) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, err := st.DeleteEndedSessions(ctx, endedBefore, batch)
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
	return total, ctx.Err()
}

// signOff stops the work of a node that shuts down cleanly, once its media
// plane has ended its sessions: whatever is still active is ended (a
// write the media plane could not make) and its heartbeat removed, so that
// peers do not take a clean stop for a crash.
func (h *housekeeping) signOff(ctx context.Context) error {
	h.stop()
	if _, err := h.svc.CloseNodeSessions(ctx, h.svc.NodeID(), time.Time{}); err != nil {
		return fmt.Errorf("signing this node off: %w", err)
	}
	return nil
}
