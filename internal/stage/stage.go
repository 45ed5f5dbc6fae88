package stage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"sort"
	"sync"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/recording"
	"github.com/rostrum-dev/rostrum/internal/token"
)

// Stage is one live stage: its current session, its participants and the
// router that forwards their media.
type Stage struct {
	m    *Manager
	arn  string
	id   string
	info *ivs.StageInfo
	rec  *recorder

	mu           sync.Mutex
	sessionID    string
	router       Router
	participants map[string]*Participant
	kicked       []disconnectedState
	seq          int64
	grace        *time.Timer
	ended        bool // this Stage value is finished; a new one takes over
}

// Participant is one participant of the current session.
type Participant struct {
	id         string
	userID     string
	attributes map[string]string
	caps       token.Capabilities
	client     ClientInfo
	firstJoin  time.Time
	present    bool
	published  bool // ever published in this session (the API's "published")

	events       map[*EventsConn]struct{}
	publisher    *Resource
	publishing   bool                 // the current publisher's media is flowing
	subs         map[string]*Resource // by publisher id: one subscription each
	audioMuted   bool
	videoStopped bool

	// The participant's recording (on a stage that records), as the
	// recorder last reported it.
	recState, recBucket, recPrefix string

	// Replication (replication.go): repl is the participant's part in it
	// (nil: none); replica is the replication a replica is fed by; sources
	// counts the active replications of a source participant.
	repl    *ivs.ReplicationView
	replica *replication
	sources int
}

// ClientInfo is what a client says about itself.
type ClientInfo = ivs.ClientInfo

func newStage(m *Manager, info *ivs.StageInfo) *Stage {
	st := &Stage{m: m, arn: info.ARN, id: info.ID, info: info, participants: map[string]*Participant{}}
	st.rec = newRecorder(func(err error) {
		m.log.Warn("recording stage activity", "stage", info.ARN, "err", err)
	})
	return st
}

// join makes the token's participant present, starting a session if the
// stage has none. Called with st.mu held.
func (st *Stage) join(id *Identity, client ClientInfo) *Participant {
	now := st.m.now().UTC().Truncate(time.Millisecond)
	if st.sessionID == "" {
		st.sessionID = ivs.NewSessionID()
		st.router = st.m.engine.NewRouter(st.sessionID)
		sid := st.sessionID
		st.rec.add(func(ctx context.Context) error {
			return st.m.svc.RecordStageSessionStart(ctx, st.arn, sid, now)
		})
		st.m.log.Info("stage session started", "stage", st.arn, "session", sid)
	}
	if st.grace != nil {
		st.grace.Stop()
		st.grace = nil
	}
	c := id.Claims
	p := st.participants[c.ParticipantID]
	if p == nil {
		p = &Participant{id: c.ParticipantID, firstJoin: now, events: map[*EventsConn]struct{}{}, subs: map[string]*Resource{}}
		st.participants[p.id] = p
	}
	// The latest token speaks for the participant.
	changed := p.present && (p.userID != c.UserID || !maps.Equal(p.attributes, c.Attributes))
	p.userID, p.attributes, p.caps = c.UserID, c.Attributes, c.Capabilities
	if id.replica != nil {
		p.replica, p.repl = id.replica, id.replica.view()
	} else if p.replica != nil && !p.present {
		// A replica that has gone leaves its id to whoever joins with it.
		p.replica, p.repl = nil, nil
	}
	if client.Protocol != "" {
		p.client = client
	}
	if !p.present {
		p.present = true
		st.recordParticipant(p)
		st.recordEvent(p, ivs.ParticipantEvent{Name: api.EventNameJoined})
		st.broadcast()
	} else if changed {
		// A token exchange: the others (and compositions, whose layout
		// follows attributes) see the new attributes.
		st.broadcast()
	}
	return p
}

// leaveIfIdle marks a participant that has no connection left as gone, and
// starts the session's grace period when nobody is left. Called with st.mu
// held.
func (st *Stage) leaveIfIdle(p *Participant) {
	if !p.present || len(p.events) > 0 || p.publisher != nil || len(p.subs) > 0 {
		return
	}
	p.present = false
	p.publishing = false
	st.recordParticipant(p)
	st.recordEvent(p, ivs.ParticipantEvent{Name: api.EventNameLeft})
	st.broadcast()
	st.graceIfEmpty()
}

// graceIfEmpty starts the session's grace period if nobody is present and
// no participant's replication waits for its source to come back. Called
// with st.mu held.
func (st *Stage) graceIfEmpty() {
	if !st.empty() {
		return
	}
	if st.sessionID != "" && st.grace == nil {
		st.grace = time.AfterFunc(st.m.cfg.SessionGrace, st.endIfEmpty)
	}
}

// empty: nobody is present, and no replication holds the session for its
// source's return (its reconnect window). Called with st.mu held.
func (st *Stage) empty() bool {
	for _, p := range st.participants {
		if p.present || p.sources > 0 {
			return false
		}
	}
	return true
}

// endIfEmpty ends the session after the grace period if nobody came back.
func (st *Stage) endIfEmpty() {
	router := st.endIfEmptyLocked()
	if router != nil {
		router.Close()
	}
	if st.isEnded() {
		st.rec.flush()
		st.m.forget(st)
	}
}

func (st *Stage) endIfEmptyLocked() Router {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended || !st.empty() {
		return nil
	}
	return st.endSessionLocked()
}

func (st *Stage) isEnded() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ended
}

// endSessionLocked records the session's end and retires this Stage value;
// the caller closes the returned router after unlocking.
func (st *Stage) endSessionLocked() Router {
	router := st.router
	if st.sessionID != "" {
		sid := st.sessionID
		st.rec.add(func(ctx context.Context) error { return st.m.svc.EndStageSession(ctx, st.arn, sid) })
		st.m.log.Info("stage session ended", "stage", st.arn, "session", sid)
	}
	if st.grace != nil {
		st.grace.Stop()
		st.grace = nil
	}
	st.sessionID, st.router, st.ended = "", nil, true
	st.notifyWatchers()
	return router
}

// recordParticipant queues the participant's current record. Called with
// st.mu held (the record is taken now, written later).
func (st *Stage) recordParticipant(p *Participant) {
	if st.sessionID == "" {
		return
	}
	rec := ivs.ParticipantRecord{
		ID: p.id, UserID: p.userID, Attributes: p.attributes, Connected: p.present, FirstJoin: p.firstJoin,
		Published: p.published, Recording: st.records(p), Client: p.client,
		RecordingState: p.recState, RecordingBucket: p.recBucket, RecordingPrefix: p.recPrefix,
	}
	if p.repl != nil {
		v := *p.repl
		rec.Replication = &v
	}
	if rs := st.info.RecordingSettings; rs != nil && rec.Recording && rec.RecordingBucket == "" {
		// Recording is on: the bucket and the participant's prefix are
		// known before anything is recorded.
		rec.RecordingBucket = rs.Bucket
		rec.RecordingPrefix = recording.ParticipantPrefix(st.id, st.sessionID, p.id)
	}
	sid := st.sessionID
	st.rec.add(func(ctx context.Context) error { return st.m.svc.RecordParticipantState(ctx, st.arn, sid, rec) })
}

// records reports whether the participant is recorded: the stage records
// its participants, and its replicas unless recordParticipantReplicas is
// off.
func (st *Stage) records(p *Participant) bool {
	rs := st.info.RecordingSettings
	return st.info.Recording && (p.replica == nil || rs == nil || rs.RecordReplicas)
}

// recordEvent queues a participant event. Called with st.mu held.
func (st *Stage) recordEvent(p *Participant, e ivs.ParticipantEvent) {
	if st.sessionID == "" {
		return
	}
	e.ParticipantID, e.UserID = p.id, p.userID
	e.Time = st.m.now().UTC().Truncate(time.Millisecond)
	// The model: replica names the participant, or for a subscribe event
	// the remote participant, as a replica.
	who := p
	if e.RemoteParticipantID != "" {
		who = st.participants[e.RemoteParticipantID]
	}
	e.Replica = who != nil && who.replica != nil
	sid := st.sessionID
	st.rec.add(func(ctx context.Context) error { return st.m.svc.RecordEvent(ctx, st.arn, sid, e) })
}

// present returns the present participants in a stable order.
func (st *Stage) present() []*Participant {
	var ps []*Participant
	for _, p := range st.participants {
		if p.present {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool {
		if !ps[i].firstJoin.Equal(ps[j].firstJoin) {
			return ps[i].firstJoin.Before(ps[j].firstJoin)
		}
		return ps[i].id < ps[j].id
	})
	return ps
}

// detach ends the stage's side of all the participant's connections: its
// events channels get msg and close, its media connections are recorded as
// stopped and returned for the caller to close after unlocking (their
// engine callbacks then find nothing left to do). Called with st.mu held.
func (st *Stage) detach(p *Participant, msg []byte, reason string) []*Resource {
	for c := range p.events {
		c.sink.Send(msg)
		c.sink.Close(reason)
		delete(p.events, c)
	}
	var rs []*Resource
	if r := p.publisher; r != nil {
		st.publisherGone(p, r)
		rs = append(rs, r)
	}
	for _, r := range p.subs {
		st.subscriptionGone(p, r)
		rs = append(rs, r)
	}
	return rs
}

// kick disconnects a participant for good (DisconnectParticipant).
func (st *Stage) kick(pid, reason string) {
	resources, ok := st.kickLocked(pid, reason)
	if !ok {
		return
	}
	for _, r := range resources {
		r.Close()
	}
	st.m.log.Info("participant disconnected", "stage", st.arn, "participant", pid, "reason", reason)
}

func (st *Stage) kickLocked(pid, reason string) ([]*Resource, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.participants[pid]
	if p == nil {
		return nil, false
	}
	resources := st.detach(p, disconnectMessage("PARTICIPANT_DISCONNECTED", reason), "participant disconnected")
	for _, r := range resources {
		r.setCause(ErrDisconnected)
	}
	st.kicked = append(st.kicked, disconnectedState{ID: p.id, UserID: p.userID, Status: "KICKED"})
	if len(st.kicked) > 100 {
		st.kicked = st.kicked[len(st.kicked)-100:]
	}
	st.leaveIfIdle(p)
	st.broadcast()
	return resources, true
}

// disconnectAll disconnects everyone (the stage was deleted, the server
// stops) and ends the session, in one critical section: a join that comes
// after finds this Stage value ended and goes to its successor (or is
// refused), never into a session being ended.
func (st *Stage) disconnectAll(code, reason string) {
	resources, router := st.disconnectAllLocked(code, reason)
	for _, r := range resources {
		r.Close()
	}
	if router != nil {
		router.Close()
	}
	st.rec.flush()
	st.m.forget(st)
}

func (st *Stage) disconnectAllLocked(code, reason string) ([]*Resource, Router) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended {
		return nil, nil
	}
	msg := disconnectMessage(code, reason)
	cause := ErrUnavailable
	if code == "STAGE_DELETED" {
		cause = ErrStageDeleted
	}
	var resources []*Resource
	for _, p := range st.participants {
		for _, r := range st.detach(p, msg, reason) {
			r.setCause(cause)
			resources = append(resources, r)
		}
		st.leaveIfIdle(p)
	}
	return resources, st.endSessionLocked()
}

func newResourceID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
