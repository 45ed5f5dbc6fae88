package stage

import (
	"maps"
	"sync"
	"time"

	"github.com/rostrum-dev/rostrum/internal/composition"
)

// Watches let a composition follow a stage (composition.StageWatcher).
// They are kept by stage ARN on the Manager, not on a Stage value, since a
// stage's sessions come and go while a composition follows it. Views are
// taken under the stage's lock, in the order things happen, and delivered
// by one goroutine per watch that always hands over the newest view: a slow
// watcher skips views, never sees them out of order, and never holds a
// stage's lock.

type stageWatch struct {
	f func(composition.StageView)

	mu        sync.Mutex
	pending   *composition.StageView
	running   bool
	cancelled bool
}

// watchSet is the manager's watches by stage ARN. Its lock is a leaf: it is
// taken under a stage's lock and under the manager's, never the reverse.
type watchSet struct {
	mu sync.Mutex
	by map[string]map[*stageWatch]struct{}
}

var _ composition.StageWatcher = (*Manager)(nil)

// WatchStage implements composition.StageWatcher.
func (m *Manager) WatchStage(stageARN string, f func(composition.StageView)) (cancel func(), err error) {
	w := &stageWatch{f: f}
	for {
		if st := m.lookupStage(stageARN); st != nil {
			if st.watchFrom(w) {
				break
			}
			// The Stage value has ended and is about to be forgotten (its
			// last records are being written): look again shortly.
			time.Sleep(5 * time.Millisecond)
			continue
		}
		// No live stage: register under the manager's lock so that a stage
		// created right now broadcasts to this watch.
		m.mu.Lock()
		if m.stages[stageARN] == nil {
			_, deleted := m.deleted[stageARN]
			m.watches.add(stageARN, w)
			w.post(composition.StageView{Deleted: deleted})
			m.mu.Unlock()
			break
		}
		m.mu.Unlock()
	}
	return func() {
		m.watches.remove(stageARN, w)
		w.mu.Lock()
		w.cancelled, w.pending = true, nil
		w.mu.Unlock()
	}, nil
}

// watchFrom registers w on a live stage and posts its view, unless the
// Stage value has ended.
func (st *Stage) watchFrom(w *stageWatch) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ended || st.m.lookupStage(st.arn) != st {
		return false
	}
	st.m.watches.add(st.arn, w)
	w.post(st.viewLocked())
	return true
}

// notifyWatchers posts the stage's view to its watches. Called with st.mu
// held, after every change a composition cares about.
func (st *Stage) notifyWatchers() {
	ws := st.m.watches.of(st.arn)
	if len(ws) == 0 {
		return
	}
	v := st.viewLocked()
	for _, w := range ws {
		w.post(v)
	}
}

// notifyDeleted tells a deleted stage's watches.
func (m *Manager) notifyDeleted(stageARN string) {
	for _, w := range m.watches.of(stageARN) {
		w.post(composition.StageView{Deleted: true})
	}
}

func (st *Stage) viewLocked() composition.StageView {
	if st.ended || st.sessionID == "" {
		return composition.StageView{}
	}
	v := composition.StageView{SessionID: st.sessionID}
	if st.router != nil {
		v.Source = st.router
	}
	for _, p := range st.present() {
		v.Participants = append(v.Participants, composition.Participant{
			ID: p.id, UserID: p.userID, Attributes: maps.Clone(p.attributes), Joined: p.firstJoin,
			Publishing: p.publishing, VideoStopped: p.videoStopped, AudioMuted: p.audioMuted,
		})
	}
	return v
}

func (s *watchSet) add(arn string, w *stageWatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[string]map[*stageWatch]struct{}{}
	}
	if s.by[arn] == nil {
		s.by[arn] = map[*stageWatch]struct{}{}
	}
	s.by[arn][w] = struct{}{}
}

func (s *watchSet) remove(arn string, w *stageWatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.by[arn], w)
	if len(s.by[arn]) == 0 {
		delete(s.by, arn)
	}
}

func (s *watchSet) of(arn string) []*stageWatch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*stageWatch, 0, len(s.by[arn]))
	for w := range s.by[arn] {
		out = append(out, w)
	}
	return out
}

// post hands v to the watch's goroutine, replacing a view not yet
// delivered.
func (w *stageWatch) post(v composition.StageView) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cancelled {
		return
	}
	w.pending = &v
	if !w.running {
		w.running = true
		go w.deliver()
	}
}

func (w *stageWatch) deliver() {
	for {
		w.mu.Lock()
		v := w.pending
		w.pending = nil
		if v == nil || w.cancelled {
			w.running = false
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		w.f(*v)
	}
}
