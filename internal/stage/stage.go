package stage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sort"
	"sync"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/sfu"
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
	router       *sfu.Router
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
	publishing   bool // the current publisher's media is flowing
	subs         map[string]*Resource
	audioMuted   bool
	videoStopped bool
}

// ClientInfo is what a client says about itself.
type ClientInfo struct {
	Protocol       string // WHIP
	BrowserName    string
	BrowserVersion string
	OSName         string
	OSVersion      string
	SDKVersion     string
}

func newStage(m *Manager, info *ivs.StageInfo) *Stage {
	st := &Stage{m: m, arn: info.ARN, id: info.ID, info: info, participants: map[string]*Participant{}}
	st.rec = newRecorder(func(err error) {
		m.log.Warn("recording stage activity", "stage", info.ARN, "err", err)
	})
	return st
}

// enter finds or starts the stage and locks it; the caller unlocks. It
// retries if the stage it found has just ended its session and been
// replaced.
func (m *Manager) enter(info *ivs.StageInfo) (*Stage, error) {
	for {
		st, err := m.stage(info)
		if err != nil {
			return nil, err
		}
		st.mu.Lock()
		if !st.ended {
			return st, nil
		}
		st.mu.Unlock()
		// The ended session's records (its end among them) are written
		// before the next session's start.
		st.rec.flush()
		m.forget(st)
	}
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
	p.userID, p.attributes, p.caps = c.UserID, c.Attributes, c.Capabilities
	if client.Protocol != "" {
		p.client = client
	}
	if !p.present {
		p.present = true
		st.recordParticipant(p)
		st.recordEvent(p.id, "JOINED", nil)
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
	st.recordEvent(p.id, "LEFT", nil)
	st.broadcast()
	for _, other := range st.participants {
		if other.present {
			return
		}
	}
	if st.sessionID != "" && st.grace == nil {
		st.grace = time.AfterFunc(st.m.cfg.SessionGrace, st.endIfEmpty)
	}
}

// endIfEmpty ends the session after the grace period if nobody came back.
func (st *Stage) endIfEmpty() {
	st.mu.Lock()
	for _, p := range st.participants {
		if p.present {
			st.mu.Unlock()
			return
		}
	}
	router := st.endSessionLocked()
	st.mu.Unlock()
	if router != nil {
		router.Close()
	}
	st.rec.flush()
	st.m.forget(st)
}

// endSessionLocked records the session's end and retires this Stage value;
// the caller closes the returned router after unlocking.
func (st *Stage) endSessionLocked() *sfu.Router {
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
	return router
}

// participantDoc is the API's view of a participant.
func (st *Stage) participantDoc(p *Participant) *api.Participant {
	state := "DISCONNECTED"
	if p.present {
		state = "CONNECTED"
	}
	doc := &api.Participant{
		ParticipantId:   api.Ptr(p.id),
		UserId:          api.Ptr(p.userID),
		State:           api.Ptr(state),
		FirstJoinTime:   api.Ptr(p.firstJoin),
		Attributes:      p.attributes,
		Published:       api.Ptr(p.published),
		ReplicationType: api.Ptr("NONE"),
	}
	if doc.Attributes == nil {
		doc.Attributes = map[string]string{}
	}
	if st.info.Recording == nil || st.info.Recording.StorageConfigurationArn == "" {
		doc.RecordingState = api.Ptr("DISABLED")
	}
	set := func(dst **string, v string) {
		if v != "" {
			*dst = api.Ptr(v)
		}
	}
	set(&doc.Protocol, p.client.Protocol)
	set(&doc.BrowserName, p.client.BrowserName)
	set(&doc.BrowserVersion, p.client.BrowserVersion)
	set(&doc.OsName, p.client.OSName)
	set(&doc.OsVersion, p.client.OSVersion)
	set(&doc.SdkVersion, p.client.SDKVersion)
	return doc
}

// recordParticipant queues the participant's current record. Called with
// st.mu held (the document is built now, written later).
func (st *Stage) recordParticipant(p *Participant) {
	doc, sid := st.participantDoc(p), st.sessionID
	st.rec.add(func(ctx context.Context) error { return st.m.svc.RecordParticipant(ctx, st.arn, sid, doc) })
}

// recordEvent queues a participant event. Called with st.mu held.
func (st *Stage) recordEvent(pid, name string, fill func(*api.Event)) {
	if st.sessionID == "" {
		return
	}
	e := &api.Event{Name: api.Ptr(name), ParticipantId: api.Ptr(pid), EventTime: api.Ptr(st.m.now().UTC().Truncate(time.Millisecond))}
	if fill != nil {
		fill(e)
	}
	sid := st.sessionID
	st.rec.add(func(ctx context.Context) error { return st.m.svc.RecordParticipantEvent(ctx, st.arn, sid, e) })
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

// kick disconnects a participant for good (DisconnectParticipant).
func (st *Stage) kick(pid, reason string) {
	st.mu.Lock()
	p := st.participants[pid]
	if p == nil {
		st.mu.Unlock()
		return
	}
	msg := disconnectMessage("PARTICIPANT_DISCONNECTED", reason)
	for c := range p.events {
		c.sink.Send(msg)
		c.sink.Close("participant disconnected")
		delete(p.events, c)
	}
	st.kicked = append(st.kicked, disconnectedState{ID: p.id, UserID: p.userID, Status: "KICKED"})
	if len(st.kicked) > 100 {
		st.kicked = st.kicked[len(st.kicked)-100:]
	}
	resources := p.resources()
	st.leaveIfIdle(p)
	st.broadcast()
	st.mu.Unlock()
	for _, r := range resources {
		r.Close()
	}
	st.m.log.Info("participant disconnected", "stage", st.arn, "participant", pid, "reason", reason)
}

// resources lists the participant's media connections. Called with st.mu
// held.
func (p *Participant) resources() []*Resource {
	var rs []*Resource
	if p.publisher != nil {
		rs = append(rs, p.publisher)
	}
	for _, r := range p.subs {
		rs = append(rs, r)
	}
	return rs
}

// deleted disconnects everyone from a deleted stage and ends its session.
func (st *Stage) deleted() { st.disconnectAll("STAGE_DELETED", "the stage was deleted") }

// shutdown disconnects everyone because the server stops.
func (st *Stage) shutdown() { st.disconnectAll("INTERNAL", "the server is shutting down") }

func (st *Stage) disconnectAll(code, reason string) {
	st.mu.Lock()
	msg := disconnectMessage(code, reason)
	var resources []*Resource
	for _, p := range st.participants {
		for c := range p.events {
			c.sink.Send(msg)
			c.sink.Close(reason)
			delete(p.events, c)
		}
		resources = append(resources, p.resources()...)
	}
	st.mu.Unlock()
	for _, r := range resources {
		r.Close()
	}
	st.mu.Lock()
	for _, p := range st.participants {
		st.leaveIfIdle(p)
	}
	router := st.endSessionLocked()
	st.mu.Unlock()
	if router != nil {
		router.Close()
	}
	st.rec.flush()
	st.m.forget(st)
}

func newResourceID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
