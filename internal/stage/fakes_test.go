package stage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/recording"
	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/testutil"
	"github.com/rostrum-dev/rostrum/internal/token"
)

// fakeService records what the stage writes, as "what participant/detail"
// lines, and refuses writes for a deleted stage as the store does.
type fakeService struct {
	mu       sync.Mutex
	key      *token.SigningKey
	stages   map[string]*ivs.StageInfo
	revoked  map[string]bool
	admitErr error
	writes   []string
	deleted  map[string]bool
}

func newFakeService(t testing.TB) *fakeService {
	k, err := token.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return &fakeService{key: k, stages: map[string]*ivs.StageInfo{}, revoked: map[string]bool{}, deleted: map[string]bool{}}
}

func (s *fakeService) Admit(ctx context.Context, kid, stageARN, pid string) (*ivs.Admission, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.admitErr != nil {
		return nil, s.admitErr
	}
	if kid != s.key.ID {
		return nil, ivs.ErrUnknownKey
	}
	return &ivs.Admission{Key: &s.key.Private.PublicKey, Stage: s.stages[stageARN], Revoked: s.revoked[stageARN+"/"+pid]}, nil
}

func (s *fakeService) write(arn, line string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.deleted[arn] {
		return fmt.Errorf("fake: %s: %w", arn, store.ErrNotFound)
	}
	s.writes = append(s.writes, line)
	return nil
}

func (s *fakeService) RecordStageSessionStart(ctx context.Context, arn, sid string, at time.Time) error {
	return s.write(arn, "session started")
}

func (s *fakeService) EndStageSession(ctx context.Context, arn, sid string) error {
	return s.write(arn, "session ended")
}

func (s *fakeService) RecordParticipantState(ctx context.Context, arn, sid string, p ivs.ParticipantRecord) error {
	state := "DISCONNECTED"
	if p.Connected {
		state = "CONNECTED"
	}
	line := p.ID + " " + state
	if p.Recording {
		line += " recording=" + p.RecordingState + " " + p.RecordingBucket + " " + p.RecordingPrefix
	}
	return s.write(arn, line)
}

func (s *fakeService) RecordEvent(ctx context.Context, arn, sid string, e ivs.ParticipantEvent) error {
	line := e.ParticipantID + " " + e.Name
	if e.RemoteParticipantID != "" {
		line += " " + e.RemoteParticipantID
	}
	if e.ErrorCode != "" {
		line += " " + e.ErrorCode
	}
	return s.write(arn, line)
}

func (s *fakeService) RecordReplica(ctx context.Context, r ivs.ReplicaRecord) error {
	state := "STOPPED"
	if r.Active {
		state = "ACTIVE"
	}
	return s.write(r.SourceStageARN, r.ParticipantID+" replica "+r.DestinationStageARN+" "+state)
}

func (s *fakeService) RecordRecordingChange(ctx context.Context, arn, sid string, c ivs.RecordingChange, patch bool) error {
	return s.write(arn, c.ParticipantID+" recording "+c.State+" "+c.Event)
}

func (s *fakeService) deleteStage(arn string) {
	s.mu.Lock()
	s.deleted[arn] = true
	delete(s.stages, arn)
	s.mu.Unlock()
}

// recorded returns the writes so far.
func (s *fakeService) recorded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.writes...)
}

// fakeEngine hands out fakeRouters.
type fakeEngine struct {
	mu      sync.Mutex
	routers []*fakeRouter
	// publishErr, if set, fails every Publish and Subscribe.
	publishErr error
	// closing, if set, is called (without locks) by every connection's
	// Close, before it reports the close.
	closing func()
}

func (e *fakeEngine) NewRouter(id string) Router {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := &fakeRouter{e: e, id: id}
	e.routers = append(e.routers, r)
	return r
}

type fakeRouter struct {
	e  *fakeEngine
	id string

	mu     sync.Mutex
	conns  []*fakeConn
	closed bool
}

func (r *fakeRouter) add(c *fakeConn) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return sfu.ErrClosed
	}
	r.conns = append(r.conns, c)
	return nil
}

func (r *fakeRouter) Publish(ctx context.Context, pid, offer string, cb sfu.PublisherCallbacks) (Conn, string, error) {
	if err := r.e.publishErr; err != nil {
		return nil, "", err
	}
	c := &fakeConn{r: r, who: pid, onMedia: cb.OnMedia, onClosed: cb.OnClosed}
	if err := r.add(c); err != nil {
		return nil, "", err
	}
	return c, "answer", nil
}

func (r *fakeRouter) Subscribe(ctx context.Context, sid, pid, offer string, opts sfu.SubscribeOptions) (Subscription, string, error) {
	if err := r.e.publishErr; err != nil {
		return nil, "", err
	}
	c := &fakeConn{r: r, who: sid + "->" + pid, onClosed: opts.OnClosed}
	if err := r.add(c); err != nil {
		return nil, "", err
	}
	return c, "answer", nil
}

func (r *fakeRouter) PublishLocal(pid string, tracks []sfu.LocalTrack, opts sfu.LocalPublisherOptions) (LocalConn, error) {
	if err := r.e.publishErr; err != nil {
		return nil, err
	}
	c := &fakeConn{r: r, who: pid, onMedia: opts.OnMedia, onClosed: opts.OnClosed, local: true}
	if err := r.add(c); err != nil {
		return nil, err
	}
	return c, nil
}

func (r *fakeRouter) Tap(string, sfu.TapOptions) (*sfu.Tap, error) {
	return nil, sfu.ErrPublisherNotFound
}

func (r *fakeRouter) Close() error {
	r.mu.Lock()
	r.closed = true
	conns := r.conns
	r.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return nil
}

func (r *fakeRouter) isClosed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// fakeConn is a publisher's or a subscriber's connection.
type fakeConn struct {
	r        *fakeRouter
	who      string
	onMedia  func()
	onClosed func(error)

	mu      sync.Mutex
	closed  bool
	paused  []string
	local   bool // a local publisher: fed by WriteRTP
	written int
}

func (c *fakeConn) WriteRTP(track int, h *rtp.Header, payload []byte) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return sfu.ErrClosed
	}
	c.written++
	first := c.written == 1
	c.mu.Unlock()
	if first && c.onMedia != nil {
		c.onMedia()
	}
	return nil
}

func (c *fakeConn) SetSenderReport(int, uint64, uint32) {}

func (c *fakeConn) Close() error {
	if f := c.r.e.closing; f != nil {
		f()
	}
	c.mu.Lock()
	was := c.closed
	c.closed = true
	c.mu.Unlock()
	if !was && c.onClosed != nil {
		c.onClosed(nil)
	}
	return nil
}

func (c *fakeConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// fail is the remote going away.
func (c *fakeConn) fail() {
	c.mu.Lock()
	was := c.closed
	c.closed = true
	c.mu.Unlock()
	if !was && c.onClosed != nil {
		c.onClosed(sfu.ErrConnectionFailed)
	}
}

func (c *fakeConn) Layers() map[string][]sfu.LayerInfo {
	return map[string][]sfu.LayerInfo{"1": {{EncodingID: "hi"}, {EncodingID: "low"}}}
}

func (c *fakeConn) PinLayer(mid, enc string) error {
	if mid != "1" {
		return fmt.Errorf("%w: mid %s", sfu.ErrUnknownMedia, mid)
	}
	return nil
}

func (c *fakeConn) UnpinLayer(mid string) error { return nil }

func (c *fakeConn) Pause(mids []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.paused = append(c.paused, mids...)
	return nil
}

func (c *fakeConn) Play(mids []string) error { return nil }

// fakeSink is an events channel.
type fakeSink struct {
	mu     sync.Mutex
	msgs   []string
	closed string
}

func (s *fakeSink) Send(msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed == "" {
		s.msgs = append(s.msgs, string(msg))
	}
}

func (s *fakeSink) Close(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed == "" {
		s.closed = reason
	}
}

func (s *fakeSink) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) == 0 {
		return ""
	}
	return s.msgs[len(s.msgs)-1]
}

func (s *fakeSink) closedWith() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// rig is a Manager on fakes with one stage.
type rig struct {
	t      testing.TB
	m      *Manager
	svc    *fakeService
	engine *fakeEngine
	stage  *ivs.StageInfo
	warns  *testutil.Warnings
}

const testStageARN = "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl"

func newRig(t testing.TB, mutate ...func(*Config)) *rig {
	svc := newFakeService(t)
	info := &ivs.StageInfo{ARN: testStageARN, ID: "AbCdEfGhIjKl", Owner: "123456789012"}
	svc.stages[info.ARN] = info
	warns := &testutil.Warnings{}
	cfg := Defaults
	cfg.Logger = slog.New(warns)
	for _, f := range mutate {
		f(&cfg)
	}
	engine := &fakeEngine{}
	return &rig{t: t, m: NewManager(cfg, svc, engine), svc: svc, engine: engine, stage: info, warns: warns}
}

// id is an identity of participant pid on the rig's stage.
func (r *rig) id(pid string, caps token.Capabilities) *Identity {
	return &Identity{Raw: "token-of-" + pid, Kid: r.svc.key.ID, Stage: r.stage, Claims: token.Claims{
		ParticipantID: pid, Resource: r.stage.ARN, Topic: r.stage.ID, UserID: "user-" + pid, Capabilities: caps,
	}}
}

var all = token.Capabilities{Publish: true, Subscribe: true}

func (r *rig) open(pid string) (*EventsConn, *fakeSink) {
	r.t.Helper()
	sink := &fakeSink{}
	c, err := r.m.OpenEvents(r.id(pid, all), ClientInfo{}, sink)
	if err != nil {
		r.t.Fatalf("open events of %s: %v", pid, err)
	}
	return c, sink
}

func (r *rig) publish(pid string) (*Resource, *fakeConn) {
	r.t.Helper()
	res, _, err := r.m.Publish(context.Background(), r.id(pid, all), ClientInfo{Protocol: "WHIP"}, "offer")
	if err != nil {
		r.t.Fatalf("publish of %s: %v", pid, err)
	}
	c := res.conn.(*fakeConn)
	c.onMedia()
	return res, c
}

func (r *rig) subscribe(pid, publisher string) (*Resource, *fakeConn) {
	r.t.Helper()
	res, _, err := r.m.Subscribe(context.Background(), r.id(pid, all), ClientInfo{}, publisher, "offer", "")
	if err != nil {
		r.t.Fatalf("subscribe of %s to %s: %v", pid, publisher, err)
	}
	return res, res.conn.(*fakeConn)
}

// flush waits for the live stage's recorder.
func (r *rig) flush() {
	if st := r.m.lookupStage(r.stage.ARN); st != nil {
		st.rec.flush()
	}
}

// expectWrites checks that the writes so far contain want in this order
// (other writes may come between).
func (r *rig) expectWrites(want ...string) {
	r.t.Helper()
	r.flush()
	got := r.svc.recorded()
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	if i < len(want) {
		r.t.Fatalf("writes %q\ndo not contain, in order, %q (missing from %q)", got, want, want[i])
	}
}

func count(lines []string, line string) int {
	n := 0
	for _, l := range lines {
		if l == line {
			n++
		}
	}
	return n
}

var errStore = errors.New("fake: the database is locked")

// fakeRecorder remembers whom the stage asked it to record.
type fakeRecorder struct {
	mu    sync.Mutex
	calls []recording.Participant
	sets  []recording.Settings
}

func (f *fakeRecorder) Publishing(p recording.Participant, s recording.Settings, src recording.Source) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, p)
	f.sets = append(f.sets, s)
}

func (f *fakeRecorder) called() []recording.Participant {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recording.Participant(nil), f.calls...)
}
