package stage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/sfu"
)

// Participant replication (StartParticipantReplication): a publishing
// participant of a source stage appears in a destination stage as a
// replica, a participant of the destination's current session that
// publishes the source's media. A tap of the source's publisher (sfu.Tap)
// feeds a local publication in the destination (PublishLocal); keyframe
// requests of the destination's subscribers go back to the tap.
//
// The replication outlives its source's publisher for the reconnect window:
// if the source publishes again within it (in the same session, which the
// replication keeps open meanwhile), a new tap feeds the same replica,
// with its sequence numbers and timestamps continued, so that destination
// subscribers see one stream. It ends on StopParticipantReplication, when
// the window passes without the source, when the replica is disconnected
// from the destination, or when either stage is deleted.
//
// Both stages must be live on this node: replication across nodes is the
// cluster's business and not built.

var _ ivs.Replicator = (*Manager)(nil)

// replicaKey names a replication: IVS allows one per participant and
// destination.
type replicaKey struct{ src, pid, dst string }

// replicaSet holds the node's active replications.
type replicaSet struct {
	mu  sync.Mutex
	all map[replicaKey]*replication
	wg  sync.WaitGroup // the replications' workers
}

// add registers r unless its participant already replicates into r's
// destination or has max replications.
func (s *replicaSet) add(r *replication, limit int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.all == nil {
		s.all = map[replicaKey]*replication{}
	}
	if _, ok := s.all[r.key]; ok {
		return ivs.ErrAlreadyReplicated
	}
	n := 0
	for k := range s.all {
		if k.src == r.key.src && k.pid == r.key.pid {
			n++
		}
	}
	if limit > 0 && n >= limit {
		return fmt.Errorf("%w: %d", ivs.ErrTooManyReplicas, n)
	}
	s.all[r.key] = r
	return nil
}

func (s *replicaSet) remove(r *replication) {
	s.mu.Lock()
	if s.all[r.key] == r {
		delete(s.all, r.key)
	}
	s.mu.Unlock()
}

func (s *replicaSet) get(k replicaKey) *replication {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.all[k]
}

// matching lists the replications for which keep is true.
func (s *replicaSet) matching(keep func(replicaKey) bool) []*replication {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*replication
	for k, r := range s.all {
		if keep(k) {
			out = append(out, r)
		}
	}
	return out
}

// sourcePublishing is a participant's publisher sending its first media:
// the replications of the participant that wait for it resume on it.
// Called with st.mu held.
func (s *replicaSet) sourcePublishing(st *Stage, p *Participant) {
	if p.sources == 0 || st.router == nil {
		return
	}
	router, sid := st.router, st.sessionID
	for _, r := range s.matching(func(k replicaKey) bool { return k.src == st.arn && k.pid == p.id }) {
		if r.srcSession == sid {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				r.resume(router)
			}()
		}
	}
}

// StartReplication implements ivs.Replicator.
func (m *Manager) StartReplication(ctx context.Context, req ivs.ReplicationRequest) error {
	r := &replication{
		m: m, key: replicaKey{src: req.Source.ARN, pid: req.ParticipantID, dst: req.Destination.ARN},
		window:    req.ReconnectWindow,
		keyframes: make(chan struct{}, 1), done: make(chan struct{}),
	}
	src := m.lookupStage(req.Source.ARN)
	if src == nil {
		return fmt.Errorf("%w: stage %s has no session on this node", ivs.ErrReplicationSourceNotFound, req.Source.ARN)
	}
	router, client, err := src.replicationSource(r, req.Attributes)
	if err != nil {
		return err
	}
	if err := m.replicas.add(r, req.MaxReplicas); err != nil {
		return err
	}
	fail := func(err error) error {
		r.abort()
		m.replicas.remove(r)
		return err
	}
	gen, err := r.tapOn(router)
	if err != nil {
		return fail(fmt.Errorf("%w: %v", ivs.ErrReplicationSourceNotFound, err))
	}
	r.local = localTracksOf(gen.tap.Tracks())
	r.tracks = make([]replicaTrack, len(r.local))
	for i, t := range r.local {
		r.tracks[i].clock = t.Clock
	}
	gen.to.Store(identityMap(len(r.local)))
	if r.use(gen) {
		return fail(fmt.Errorf("%w: it stopped publishing", ivs.ErrReplicationSourceNotFound))
	}

	id := LocalIdentity(req.Destination, req.ParticipantID, r.userID, r.attrs)
	id.replica = r
	lp, err := m.PublishLocal(id, client, r.local, LocalPublishOptions{
		OnKeyframeRequest: func(int) { r.requestKeyframe() },
		OnEnded:           r.replicaEnded,
	})
	if err != nil {
		return fail(replicaErr(err))
	}
	r.mu.Lock()
	r.out, r.dstSession = lp, lp.SessionID()
	r.mu.Unlock()
	r.ready.Store(lp)
	if !src.replicationStarted(r) {
		return fail(fmt.Errorf("%w: it stopped while the replication started", ivs.ErrReplicationSourceNotFound))
	}
	// The records are written before the answer: ListParticipantReplicas,
	// GetParticipant and ListParticipantEvents show the replication as soon
	// as StartParticipantReplication returns.
	if err := r.writeRecord(ctx, true); err != nil {
		r.stop(stopFailed)
		return fmt.Errorf("recording the replication: %w", err)
	}
	src.rec.flush()
	if dst := m.lookupStage(r.key.dst); dst != nil {
		dst.rec.flush()
	}
	m.replicas.wg.Add(1)
	go func() {
		defer m.replicas.wg.Done()
		r.run()
	}()
	r.requestKeyframe()
	m.log.Info("participant replication started", "source", r.key.src, "participant", r.key.pid, "destination", r.key.dst,
		"destination_session", r.dstSession, "reconnect_window", r.window)
	return nil
}

// replicaErr turns the destination's refusal of the replica into the
// replication's.
func replicaErr(err error) error {
	switch {
	case errors.Is(err, ivs.ErrParticipantIDInUse), errors.Is(err, ivs.ErrDestinationFull):
		return err
	case errors.Is(err, ErrStageDeleted):
		return fmt.Errorf("%w: %v", ivs.ErrStageGone, err)
	case errors.Is(err, ErrStageFull):
		return fmt.Errorf("%w: %v", ivs.ErrDestinationFull, err)
	}
	return fmt.Errorf("replicating into the destination stage: %w", err)
}

// StopReplication implements ivs.Replicator.
func (m *Manager) StopReplication(ctx context.Context, src, dst, pid string) error {
	r := m.replicas.get(replicaKey{src: src, pid: pid, dst: dst})
	if r == nil || !r.stop(stopRequested) {
		return ivs.ErrReplicationNotFound
	}
	// The answer comes when the API shows the end.
	for _, arn := range []string{src, dst} {
		if st := m.lookupStage(arn); st != nil {
			st.rec.flush()
		}
	}
	return nil
}

// stageGoneReplicas ends the replications from or into a deleted stage
// before its participants are disconnected.
func (m *Manager) stageGoneReplicas(arn string) {
	for _, r := range m.replicas.matching(func(k replicaKey) bool { return k.src == arn || k.dst == arn }) {
		why := stopDestinationDeleted
		if r.key.src == arn {
			why = stopSourceDeleted
		}
		r.stop(why)
	}
}

// sourceDisconnected ends the replications of a participant that
// DisconnectParticipant removed for good: it cannot come back, so no
// reconnect window is waited for.
func (m *Manager) sourceDisconnected(arn, pid string) {
	for _, r := range m.replicas.matching(func(k replicaKey) bool { return k.src == arn && k.pid == pid }) {
		r.stop(stopSourceDisconnected)
	}
}

// closeReplicas ends every replication (the server is stopping) and waits
// for their workers.
func (m *Manager) closeReplicas() {
	for _, r := range m.replicas.matching(func(replicaKey) bool { return true }) {
		r.stop(stopShutdown)
	}
	m.replicas.wg.Wait()
}

// admitReplica refuses a replica that the destination stage cannot take:
// a participant of the same id is on it, or it has its maximum of
// publishers (the replication is refused with an API error, not recorded
// as the replica's PUBLISH_ERROR). Called with st.mu held.
func (st *Stage) admitReplica(id *Identity) error {
	if id.replica == nil {
		return nil
	}
	pid := id.Claims.ParticipantID
	if p := st.participants[pid]; p != nil && p.present {
		return fmt.Errorf("%w: %s", ivs.ErrParticipantIDInUse, pid)
	}
	publishers := 0
	for _, p := range st.participants {
		if p.publisher != nil {
			publishers++
		}
	}
	if limit := st.m.cfg.MaxPublishers; limit > 0 && publishers >= limit {
		return fmt.Errorf("%w: it has %d", ivs.ErrDestinationFull, publishers)
	}
	return nil
}

// replicationSource checks that the replication's participant publishes on
// the stage and takes what the replica needs of it: its session, user id
// and attributes (the request's merged over the token's), and its client.
func (st *Stage) replicationSource(r *replication, attrs map[string]string) (Router, ClientInfo, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	pid := r.key.pid
	p := st.participants[pid]
	if p != nil && p.present && p.replica != nil {
		return nil, ClientInfo{}, ivs.ErrReplicaOfReplica
	}
	if st.ended || st.router == nil || p == nil || !p.present || p.publisher == nil || !p.publishing {
		return nil, ClientInfo{}, fmt.Errorf("%w: participant %s", ivs.ErrReplicationSourceNotFound, pid)
	}
	r.srcSession, r.userID = st.sessionID, p.userID
	r.attrs = maps.Clone(p.attributes)
	if r.attrs == nil {
		r.attrs = map[string]string{}
	}
	maps.Copy(r.attrs, attrs)
	return st.router, p.client, nil
}

// replicationStarted makes the participant the SOURCE of r and records the
// start, unless its session is over.
func (st *Stage) replicationStarted(r *replication) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.participants[r.key.pid]
	if st.ended || st.sessionID != r.srcSession || p == nil {
		return false
	}
	// A stop that comes from now on finds the start recorded (or queued
	// before its own records, which wait for st.mu).
	r.mu.Lock()
	ok := !r.stopped
	r.started = ok
	r.mu.Unlock()
	if !ok {
		return false
	}
	p.sources++
	p.repl = &ivs.ReplicationView{Type: api.ReplicationTypeSource, Active: true}
	st.recordParticipant(p)
	st.recordEvent(p, ivs.ParticipantEvent{Name: api.EventNameReplicationStarted, DestinationStageARN: r.key.dst, DestinationSessionID: r.dstSession})
	return true
}

// replicationStopped records the end of r on its source, and lets the
// source's session end if only r held it. It reports false when the
// session is no longer live on this stage.
func (st *Stage) replicationStopped(r *replication, ev ivs.ParticipantEvent) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	p := st.participants[r.key.pid]
	if st.ended || st.sessionID != r.srcSession || p == nil || p.sources == 0 {
		return false
	}
	p.sources--
	p.repl = &ivs.ReplicationView{Type: api.ReplicationTypeSource, Active: p.sources > 0}
	st.recordParticipant(p)
	st.recordEvent(p, ev)
	st.graceIfEmpty()
	return true
}

// replicaStopping marks the replica of r in the destination as STOPPED
// (before it leaves, or after, when it was disconnected), so that its last
// record says so.
func (st *Stage) replicaStopping(r *replication) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if p := st.participants[r.key.pid]; p != nil && p.replica == r && p.repl != nil {
		v := *p.repl
		v.Active = false
		p.repl = &v
		st.recordParticipant(p)
	}
}

// Why a replication stopped.
type stopReason int

const (
	stopRequested          stopReason = iota // StopParticipantReplication
	stopSourceGone                           // the source did not publish again within the window
	stopReplicaGone                          // the replica was disconnected from the destination
	stopSourceDeleted                        // the source stage was deleted
	stopDestinationDeleted                   // the destination stage was deleted
	stopShutdown                             // the server is stopping
	stopFailed                               // its record could not be written
	stopSourceDisconnected                   // DisconnectParticipant removed the source for good
)

func (w stopReason) String() string {
	return [...]string{"requested", "source gone", "replica gone", "source stage deleted", "destination stage deleted", "shutdown", "failed", "source disconnected"}[w]
}

// replication is one active replication.
type replication struct {
	m      *Manager
	key    replicaKey
	window time.Duration
	// Set before the replica joins, then fixed: the source's session,
	// user id and the replica's attributes.
	srcSession, userID string
	attrs              map[string]string
	// local are the replica's tracks (those of the first tap); tracks
	// their rewriting state, in the same order.
	local  []sfu.LocalTrack
	tracks []replicaTrack

	ready     atomic.Pointer[LocalPublication] // the replica, once it publishes
	keyframes chan struct{}                    // to the worker: ask the tap for a keyframe
	done      chan struct{}                    // closed when stopped
	doneOnce  sync.Once
	recMu     sync.Mutex // serialises the record's writes

	cur atomic.Pointer[tapGen] // gen, for the hot path

	mu         sync.Mutex
	gen        *tapGen // the current tap; nil while the source is away
	out        *LocalPublication
	dstSession string
	timer      *time.Timer // the reconnect window, while the source is away
	started    bool        // its start is recorded on the source
	stopped    bool
}

func (r *replication) finish() { r.doneOnce.Do(func() { close(r.done) }) }

// view is the replica's replication members while it is active.
func (r *replication) view() *ivs.ReplicationView {
	return &ivs.ReplicationView{Type: api.ReplicationTypeReplica, Active: true, SourceStageARN: r.key.src, SourceSessionID: r.srcSession}
}

// writeRecord writes the replication's record with its source stage. The
// writes of one replication are serialised, and ACTIVE is not written
// once it has stopped, so that the last record is the true one.
func (r *replication) writeRecord(ctx context.Context, active bool) error {
	r.recMu.Lock()
	defer r.recMu.Unlock()
	r.mu.Lock()
	rec := ivs.ReplicaRecord{
		SourceStageARN: r.key.src, SourceSessionID: r.srcSession,
		DestinationStageARN: r.key.dst, DestinationSessionID: r.dstSession,
		ParticipantID: r.key.pid, Active: active,
	}
	stopped := r.stopped
	r.mu.Unlock()
	if active && stopped {
		return nil
	}
	return r.m.svc.RecordReplica(ctx, rec)
}

// replicaEnded: the replica's publication ended. Unless the replication
// ended it, the replica was disconnected from the destination (or the
// destination's session ended under it), which ends the replication.
func (r *replication) replicaEnded(err error) {
	if err == nil {
		return
	}
	r.m.replicas.wg.Add(1)
	go func() {
		defer r.m.replicas.wg.Done()
		r.stop(stopReplicaGone)
	}()
}

// abort undoes a replication that failed to start: nothing was recorded
// of it on the source.
func (r *replication) abort() {
	r.mu.Lock()
	r.stopped = true
	gen, out := r.gen, r.out
	r.gen, r.out = nil, nil
	r.cur.Store(nil)
	r.mu.Unlock()
	r.finish()
	if gen != nil {
		gen.tap.Close()
	}
	if out != nil {
		out.Close()
	}
}

// stop ends the replication, once (false if it had already ended): the
// replica leaves the destination, the source is told and the end is
// recorded on the source (REPLICATION_STOPPED, the record STOPPED).
func (r *replication) stop(why stopReason) bool {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return false
	}
	r.stopped = true
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	gen, out, started := r.gen, r.out, r.started
	r.gen = nil
	r.cur.Store(nil)
	r.mu.Unlock()
	r.finish()
	r.m.replicas.remove(r)
	if gen != nil {
		gen.tap.Close()
	}
	if out != nil {
		if dst := r.m.lookupStage(r.key.dst); dst != nil && why != stopDestinationDeleted {
			dst.replicaStopping(r)
		}
		out.Close()
	}
	r.m.log.Info("participant replication stopped", "source", r.key.src, "participant", r.key.pid, "destination", r.key.dst, "why", why)
	if why == stopSourceDeleted || !started {
		// The source's records went with it; or the start is not
		// recorded (StartReplication is failing) and nothing is.
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := r.writeRecord(ctx, false)
	r.mu.Lock()
	dstSession := r.dstSession
	r.mu.Unlock()
	ev := ivs.ParticipantEvent{Name: api.EventNameReplicationStopped, DestinationStageARN: r.key.dst, DestinationSessionID: dstSession}
	if src := r.m.lookupStage(r.key.src); src == nil || !src.replicationStopped(r, ev) {
		// The source's session is not live here any more (the server
		// is stopping, or it ended in a race): record the end directly.
		ev.ParticipantID, ev.UserID, ev.Time = r.key.pid, r.userID, r.m.now().UTC().Truncate(time.Millisecond)
		err = errors.Join(err, r.m.svc.RecordEvent(ctx, r.key.src, r.srcSession, ev))
	}
	if err != nil {
		r.m.log.Warn("recording the end of a replication", "source", r.key.src, "participant", r.key.pid, "err", err)
	}
	return true
}
