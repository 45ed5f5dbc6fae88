// Package stage is the room logic of the media plane: who is on a stage,
// what they publish and subscribe to, when a stage session starts and ends,
// and what the API and the events channel say about it. It sits between the
// signalling transport (internal/signal), the forwarding engine
// (internal/sfu) and the IVS service (internal/ivs), and knows no HTTP.
package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/token"
)

// Config configures the Manager.
type Config struct {
	// SessionGrace is how long a stage session outlives its last
	// participant, so that a reconnect does not start a new session.
	SessionGrace time.Duration
	// MaxPublishers is IVS's 12 publishers per stage.
	MaxPublishers int
	// MaxSubscribers bounds the participants subscribing on one stage.
	MaxSubscribers int
	// TokenLeeway is the clock skew allowed on token times.
	TokenLeeway time.Duration
	Logger      *slog.Logger
	Now         func() time.Time
}

// Defaults are IVS's limits and sensible timings.
var Defaults = Config{
	SessionGrace:   10 * time.Second,
	MaxPublishers:  12,
	MaxSubscribers: 10000,
	TokenLeeway:    60 * time.Second,
}

// Manager holds the live stages of this node.
type Manager struct {
	cfg    Config
	svc    *ivs.Service
	engine *sfu.Engine
	log    *slog.Logger
	now    func() time.Time

	mu        sync.Mutex
	stages    map[string]*Stage // by stage ARN
	resources map[string]*Resource
	closed    bool
}

var _ ivs.MediaPlane = (*Manager)(nil)

// NewManager returns a manager and connects it to the service as its media
// plane.
func NewManager(cfg Config, svc *ivs.Service, engine *sfu.Engine) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{cfg: cfg, svc: svc, engine: engine, log: cfg.Logger, now: cfg.Now,
		stages: map[string]*Stage{}, resources: map[string]*Resource{}}
	svc.SetMediaPlane(m)
	return m
}

// JoinError is a refused join, publish or subscribe: the events channel
// sends Code as aws:ivs:JOIN_ERROR, the HTTP endpoints answer Status with
// IVS's JSON error code WHIPCode.
type JoinError struct {
	Code     string // TOKEN_INVALID, TOKEN_EXPIRED, …
	Status   int    // HTTP status for the media endpoints
	WHIPCode int    // IVS's JSON error code, 2001–2014
	Message  string
}

func (e *JoinError) Error() string { return e.Code + ": " + e.Message }

func joinErr(code string, status, whip int, format string, args ...any) *JoinError {
	return &JoinError{Code: code, Status: status, WHIPCode: whip, Message: fmt.Sprintf(format, args...)}
}

// Identity is an authenticated participant token.
type Identity struct {
	Raw    string
	Kid    string // the key that signed it: the server's, or a public key ARN
	Claims token.Claims
	Stage  *ivs.StageInfo
}

// Authenticate verifies a participant token: signature (the server's key or
// a public key imported into the stage's account), expiry, that its stage
// exists and that DisconnectParticipant has not revoked it.
func (m *Manager) Authenticate(ctx context.Context, raw string) (*Identity, error) {
	if raw == "" {
		return nil, joinErr("TOKEN_MISSING", 401, 2001, "a participant token is required")
	}
	p, err := token.Parse(raw)
	if err != nil {
		return nil, joinErr("TOKEN_INVALID", 401, 2001, "the participant token cannot be parsed: %v", err)
	}
	c := p.Claims
	key, err := m.svc.TokenKey(ctx, p.Header.Kid, c.Resource)
	if err != nil {
		return nil, joinErr("TOKEN_INVALID_SIGNATURE", 401, 2001, "the participant token is not signed by a key this stage trusts")
	}
	if err := p.Verify(key); err != nil {
		return nil, joinErr("TOKEN_INVALID_SIGNATURE", 401, 2001, "the participant token's signature does not verify")
	}
	if err := c.Validate(m.now(), m.cfg.TokenLeeway); err != nil {
		if errors.Is(err, token.ErrExpired) {
			return nil, joinErr("TOKEN_EXPIRED", 401, 2002, "the participant token has expired")
		}
		return nil, joinErr("TOKEN_INVALID", 401, 2001, "the participant token is not valid: %v", err)
	}
	st, err := m.svc.LookupStage(ctx, c.Resource)
	if errors.Is(err, ivs.ErrStageNotFound) {
		return nil, joinErr("STAGE_DELETED", 404, 2001, "stage %s does not exist", c.Resource)
	}
	if err != nil {
		return nil, joinErr("INTERNAL", 500, 2006, "internal error")
	}
	if st.ID != c.Topic {
		return nil, joinErr("TOKEN_INVALID", 401, 2001, "the token's topic does not match its stage")
	}
	revoked, err := m.svc.IsParticipantRevoked(ctx, c.Resource, c.ParticipantID)
	if err != nil {
		return nil, joinErr("INTERNAL", 500, 2006, "internal error")
	}
	if revoked {
		return nil, joinErr("PARTICIPANT_DISCONNECTED", 403, 2003, "participant %s was disconnected from the stage", c.ParticipantID)
	}
	return &Identity{Raw: raw, Kid: p.Header.Kid, Claims: c, Stage: st}, nil
}

// stage returns the live stage, creating it if needed.
func (m *Manager) stage(info *ivs.StageInfo) (*Stage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, sfu.ErrClosed
	}
	st := m.stages[info.ARN]
	if st == nil {
		st = newStage(m, info)
		m.stages[info.ARN] = st
	}
	return st, nil
}

// forget drops an idle stage whose session has ended.
func (m *Manager) forget(st *Stage) {
	m.mu.Lock()
	if m.stages[st.arn] == st {
		delete(m.stages, st.arn)
	}
	m.mu.Unlock()
}

func (m *Manager) lookupStage(arn string) *Stage {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stages[arn]
}

func (m *Manager) addResource(r *Resource) {
	m.mu.Lock()
	m.resources[r.ID] = r
	m.mu.Unlock()
}

func (m *Manager) dropResource(id string) {
	m.mu.Lock()
	delete(m.resources, id)
	m.mu.Unlock()
}

// Resource returns a live WHIP/WHEP resource by id.
func (m *Manager) Resource(id string) *Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.resources[id]
}

// DisconnectParticipant implements ivs.MediaPlane.
func (m *Manager) DisconnectParticipant(ctx context.Context, stageARN, participantID, reason string) error {
	if st := m.lookupStage(stageARN); st != nil {
		st.kick(participantID, reason)
	}
	return nil
}

// StageDeleted implements ivs.MediaPlane.
func (m *Manager) StageDeleted(ctx context.Context, stageARN string) {
	if st := m.lookupStage(stageARN); st != nil {
		st.deleted()
	}
}

// Close disconnects everyone and ends every session.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	stages := make([]*Stage, 0, len(m.stages))
	for _, st := range m.stages {
		stages = append(stages, st)
	}
	m.mu.Unlock()
	for _, st := range stages {
		st.shutdown()
	}
}
