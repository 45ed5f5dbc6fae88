// Package stage is the room logic of the media plane: who is on a stage,
// what they publish and subscribe to, when a stage session starts and ends,
// and what the API and the events channel say about it. It sits between the
// signalling transport (internal/signal), the forwarding engine (Engine)
// and the IVS service (Service), and knows no HTTP: it answers with the
// domain errors of errors.go.
package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rostrum-dev/rostrum/internal/ivs"
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
	// ConnectRate and ConnectBurst limit how fast one participant opens
	// connections (events channel, publish, subscribe): ConnectBurst at
	// once, then ConnectRate per second. ConnectRate 0 is no limit.
	ConnectRate  float64
	ConnectBurst int
	Logger       *slog.Logger
	Now          func() time.Time
}

// Defaults are IVS's limits and sensible timings.
var Defaults = Config{
	SessionGrace:   10 * time.Second,
	MaxPublishers:  12,
	MaxSubscribers: 10000,
	TokenLeeway:    60 * time.Second,
	ConnectRate:    2,
	ConnectBurst:   30,
}

// MaxTokenBytes bounds a participant token. Real tokens are under 2 KiB
// (attributes are at most 1 KiB); transports refuse larger ones before any
// other work, the events websocket before echoing it.
const MaxTokenBytes = 8 << 10

// deletedMemory is how long a deleted stage's ARN is remembered, so that a
// join authenticated just before the delete does not start a session on
// it. Authenticating and joining are one request apart.
const deletedMemory = time.Minute

// Manager holds the live stages of this node.
type Manager struct {
	cfg      Config
	svc      Service
	engine   Engine
	recorder Recorder // nil: nothing is recorded
	log      *slog.Logger
	now      func() time.Time
	limit    *connectLimiter

	replicas replicaSet // replication.go

	mu        sync.Mutex
	stages    map[string]*Stage // by stage ARN
	deleted   map[string]time.Time
	resources map[string]*Resource
	closed    bool

	watches watchSet // compositions following stages (watch.go)
}

var _ ivs.MediaPlane = (*Manager)(nil)

// NewManager returns a manager; the caller connects it to the service as
// its media plane (ivs.Service.SetMediaPlane).
func NewManager(cfg Config, svc Service, engine Engine) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{cfg: cfg, svc: svc, engine: engine, log: cfg.Logger, now: cfg.Now,
		limit:  newConnectLimiter(cfg.ConnectRate, cfg.ConnectBurst),
		stages: map[string]*Stage{}, deleted: map[string]time.Time{}, resources: map[string]*Resource{}}
}

// SetRecorder makes the manager record the publishers of stages that
// record their participants. Call it before the manager is used.
func (m *Manager) SetRecorder(r Recorder) { m.recorder = r }

// Identity is an authenticated participant token.
type Identity struct {
	Raw    string
	Kid    string // the key that signed it: the server's, or a public key ARN
	Claims token.Claims
	Stage  *ivs.StageInfo
	// replica: the identity is a replica's, made by StartReplication
	// rather than read from a token.
	replica *replication
}

// Authenticate verifies a participant token: signature (the server's key or
// a public key imported into the stage's account), expiry, that its stage
// exists and that DisconnectParticipant has not revoked it.
func (m *Manager) Authenticate(ctx context.Context, raw string) (*Identity, error) {
	if raw == "" {
		return nil, ErrTokenMissing
	}
	if len(raw) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: it is longer than %d bytes", ErrTokenInvalid, MaxTokenBytes)
	}
	p, err := token.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: it cannot be parsed: %v", ErrTokenInvalid, err)
	}
	c := p.Claims
	a, err := m.svc.Admit(ctx, p.Header.Kid, c.Resource, c.ParticipantID)
	if errors.Is(err, ivs.ErrUnknownKey) {
		return nil, ErrTokenSignature
	}
	if err != nil {
		return nil, fmt.Errorf("%w: admitting a participant token: %v", ErrInternal, err)
	}
	if err := p.Verify(a.Key); err != nil {
		return nil, fmt.Errorf("%w: its signature does not verify", ErrTokenSignature)
	}
	if err := c.ValidateWith(m.now(), token.Limits{Leeway: m.cfg.TokenLeeway, MaxLifetime: a.MaxLifetime}); err != nil {
		if errors.Is(err, token.ErrExpired) {
			return nil, ErrTokenExpired
		}
		return nil, fmt.Errorf("%w: %v", ErrTokenInvalid, err)
	}
	if a.Stage == nil {
		return nil, fmt.Errorf("%w: stage %s", ErrStageDeleted, c.Resource)
	}
	if a.Stage.ID != c.Topic {
		return nil, fmt.Errorf("%w: its topic does not match its stage", ErrTokenInvalid)
	}
	if a.Revoked {
		return nil, fmt.Errorf("%w: participant %s", ErrDisconnected, c.ParticipantID)
	}
	return &Identity{Raw: raw, Kid: p.Header.Kid, Claims: c, Stage: a.Stage}, nil
}

// withStage admits the identity's participant to its live stage (starting
// it if needed) and runs f with the stage locked. Every request that can
// join a participant goes through here: it is where the connect rate is
// charged, where a deleted stage is refused and where a stage whose session
// has just ended is replaced.
func (m *Manager) withStage(id *Identity, f func(st *Stage) error) error {
	if !m.limit.allow(id.Stage.ARN+"/"+id.Claims.ParticipantID, m.now()) {
		return fmt.Errorf("%w: at most %d at once, then %g per second", ErrThrottled, m.cfg.ConnectBurst, m.cfg.ConnectRate)
	}
	for {
		st, err := m.stage(id.Stage)
		if err != nil {
			return err
		}
		done, err := st.locked(f)
		if done {
			return err
		}
		// The ended session's records (its end among them) are written
		// before the next session's start.
		st.rec.flush()
		m.forget(st)
	}
}

// locked runs f with st.mu held, unless this Stage value has ended (then
// done is false and the caller retries on its successor).
func (st *Stage) locked(f func(st *Stage) error) (done bool, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return false, nil
	}
	return true, f(st)
}

// stage returns the live stage, creating it if needed.
func (m *Manager) stage(info *ivs.StageInfo) (*Stage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrUnavailable
	}
	if at, ok := m.deleted[info.ARN]; ok {
		if m.now().Sub(at) < deletedMemory {
			return nil, fmt.Errorf("%w: stage %s was deleted", ErrStageDeleted, info.ARN)
		}
		delete(m.deleted, info.ARN)
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

// Resource returns a live WHIP/WHEP resource by id, or nil.
func (m *Manager) Resource(id string) *Resource {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.resources[id]
}

// OwnedResource returns the resource if tok is a token of its participant:
// the one it was created with, or another token of the same participant on
// the same stage.
func (m *Manager) OwnedResource(ctx context.Context, id, tok string) (*Resource, error) {
	res := m.Resource(id)
	if res == nil {
		return nil, ErrUnknownResource
	}
	if tok == "" {
		return nil, ErrTokenMissing
	}
	if tok != res.Token {
		who, err := m.Authenticate(ctx, tok)
		if errors.Is(err, ErrInternal) {
			return nil, err
		}
		if err != nil || who.Claims.ParticipantID != res.ParticipantID || who.Claims.Resource != res.StageARN {
			return nil, fmt.Errorf("%w: it does not own this resource", ErrNotOwner)
		}
	}
	return res, nil
}

// DisconnectParticipant implements ivs.MediaPlane.
func (m *Manager) DisconnectParticipant(ctx context.Context, stageARN, participantID, reason string) error {
	if st := m.lookupStage(stageARN); st != nil {
		st.kick(participantID, reason)
	}
	m.sourceDisconnected(stageARN, participantID)
	return nil
}

// StageDeleting drops what the live stage still has to write: its records
// are deleted with it (the store's delete is under way).
func (m *Manager) StageDeleting(stageARN string) {
	if st := m.lookupStage(stageARN); st != nil {
		st.rec.drop()
	}
}

// StageDeleted implements ivs.MediaPlane. The store deleted the stage's
// sessions, participants and events with it, so what the stage would still
// record of its last session is dropped, deliberately.
func (m *Manager) StageDeleted(ctx context.Context, stageARN string) {
	m.mu.Lock()
	now := m.now()
	for arn, at := range m.deleted {
		if now.Sub(at) >= deletedMemory {
			delete(m.deleted, arn)
		}
	}
	m.deleted[stageARN] = now
	st := m.stages[stageARN]
	m.mu.Unlock()
	m.stageGoneReplicas(stageARN)
	if st != nil {
		st.rec.drop()
		st.disconnectAll("STAGE_DELETED", "the stage was deleted")
	}
	m.notifyDeleted(stageARN)
}

// Close disconnects everyone and ends every session.
func (m *Manager) Close() {
	m.closeReplicas()
	m.mu.Lock()
	m.closed = true
	stages := make([]*Stage, 0, len(m.stages))
	for _, st := range m.stages {
		stages = append(stages, st)
	}
	m.mu.Unlock()
	for _, st := range stages {
		st.disconnectAll("INTERNAL", "the server is shutting down")
	}
}
