package stage

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/rostrum-dev/rostrum/internal/sfu"
)

// A replication's media: the taps of its source, each forwarded into the
// replica with sequence numbers and timestamps continued from the last.

// tapGen is one tap of the source: which replica track each of its tracks
// feeds (-1: none), set once the tap's tracks are known.
type tapGen struct {
	tap    *sfu.Tap // set before the tap is used
	to     atomic.Pointer[[]int]
	closed atomic.Bool // the source's publisher is gone
}

// tapOn taps the source's publisher on router.
func (r *replication) tapOn(router Router) (*tapGen, error) {
	gen := &tapGen{}
	tap, err := router.Tap(r.key.pid, sfu.TapOptions{
		OnPacket: func(track int, h *rtp.Header, payload []byte) { r.forward(gen, track, h, payload) },
		OnClosed: func(err error) {
			if err != nil {
				gen.closed.Store(true)
				r.sourceAway(gen)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	gen.tap = tap
	return gen, nil
}

// use makes gen the replication's current tap, closing the previous one.
// It reports whether gen's publisher is already gone (then the source is
// away; the caller handles it).
func (r *replication) use(gen *tapGen) (gone bool) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		gen.tap.Close()
		return false
	}
	old := r.gen
	r.gen = gen
	r.cur.Store(gen)
	if r.timer != nil {
		r.timer.Stop()
		r.timer = nil
	}
	r.mu.Unlock()
	if old != nil {
		old.tap.Close()
	}
	return gen.closed.Load()
}

// replicaTrack continues one replica track's sequence numbers and
// timestamps across taps: each tap starts its own, and the replica's
// subscribers must see one stream.
type replicaTrack struct {
	mu     sync.Mutex
	clock  uint32
	gen    *tapGen // the tap the offsets are for
	seqOff uint16
	tsOff  uint32
	sent   bool
	last   struct {
		seq uint16
		ts  uint32
		at  time.Time
	}
	h rtp.Header // scratch, reused for every packet
}

// forward writes one packet of the tap into the replica: the HOT PATH of
// replication, run on the source publisher's reader goroutine.
func (r *replication) forward(gen *tapGen, track int, h *rtp.Header, payload []byte) {
	to := gen.to.Load()
	lp := r.ready.Load()
	// The last packets of a tap that has been replaced are late: the
	// stream goes on from the new tap.
	if to == nil || lp == nil || track >= len(*to) || r.cur.Load() != gen {
		return
	}
	i := (*to)[track]
	if i < 0 {
		return
	}
	t := &r.tracks[i]
	now := time.Now()
	t.mu.Lock()
	if t.gen != gen {
		t.gen = gen
		t.seqOff, t.tsOff = 0, 0
		if t.sent {
			// Continue from the last packet: the next sequence number,
			// and the time that passed since, in the track's clock.
			ticks := uint32(now.Sub(t.last.at).Seconds() * float64(t.clock))
			t.seqOff = t.last.seq + 1 - h.SequenceNumber
			t.tsOff = t.last.ts + max(ticks, 1) - h.Timestamp
		}
	}
	t.h = *h
	t.h.SequenceNumber += t.seqOff
	t.h.Timestamp += t.tsOff
	t.last.seq, t.last.ts, t.last.at, t.sent = t.h.SequenceNumber, t.h.Timestamp, now, true
	// An error is the replica ending; its OnEnded says so.
	_ = lp.WriteRTP(i, &t.h, payload)
	t.mu.Unlock()
}

// requestKeyframe passes a keyframe request to the worker: the local
// publisher calls it from inside WriteRTP, where the tap must not be
// called back.
func (r *replication) requestKeyframe() {
	select {
	case r.keyframes <- struct{}{}:
	default:
	}
}

// senderReportEvery is how often the source's clock mapping is copied to
// the replica, which keeps its audio and video lined up.
const senderReportEvery = time.Second

// run is the replication's worker: keyframe requests and sender reports.
func (r *replication) run() {
	t := time.NewTicker(senderReportEvery)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-r.keyframes:
			if gen := r.currentGen(); gen != nil {
				gen.tap.RequestKeyframe()
			}
		case <-t.C:
			r.copySenderReports()
		}
	}
}

func (r *replication) currentGen() *tapGen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

// copySenderReports gives the replica's tracks the source's clock mapping,
// shifted by the tracks' timestamp offsets.
func (r *replication) copySenderReports() {
	gen, lp := r.currentGen(), r.ready.Load()
	if gen == nil || lp == nil || gen.to.Load() == nil {
		return
	}
	for track, i := range *gen.to.Load() {
		if i < 0 {
			continue
		}
		ntp, rtpTime, ok := gen.tap.SenderReport(track)
		t := &r.tracks[i]
		t.mu.Lock()
		mine, off := t.gen == gen, t.tsOff
		t.mu.Unlock()
		if ok && mine {
			lp.SetSenderReport(i, ntp, rtpTime+off)
		}
	}
}

// sourceAway: the publisher gen taps is gone (the source stopped
// publishing, left, or publishes anew). The replica waits for it for the
// reconnect window.
func (r *replication) sourceAway(gen *tapGen) {
	r.mu.Lock()
	if r.stopped || r.gen != gen {
		r.mu.Unlock()
		return
	}
	r.gen = nil
	r.cur.Store(nil)
	if r.window <= 0 {
		r.mu.Unlock()
		r.stop(stopSourceGone)
		return
	}
	r.timer = time.AfterFunc(r.window, func() {
		r.mu.Lock()
		away := !r.stopped && r.gen == nil
		r.mu.Unlock()
		if away {
			r.stop(stopSourceGone)
		}
	})
	r.mu.Unlock()
	r.m.log.Info("replication source away", "source", r.key.src, "participant", r.key.pid, "destination", r.key.dst, "reconnect_window", r.window)
}

// resume taps the source's new publisher on router.
func (r *replication) resume(router Router) {
	gen, err := r.tapOn(router)
	if err != nil {
		return // gone again: the window runs on
	}
	tracks := gen.tap.Tracks()
	to := make([]int, 0, len(tracks))
	used := make([]bool, len(r.local))
	for _, tt := range tracks {
		j := -1
		for i, lt := range r.local {
			if !used[i] && lt.Kind == tt.Kind && strings.EqualFold(lt.Codec, tt.Codec) {
				j, used[i] = i, true
				break
			}
		}
		to = append(to, j)
	}
	gen.to.Store(&to)
	if r.use(gen) {
		r.sourceAway(gen)
		return
	}
	r.requestKeyframe()
	r.m.log.Info("replication source back", "source", r.key.src, "participant", r.key.pid, "destination", r.key.dst)
}

// localTracksOf describes a tap's tracks as a local publisher's.
func localTracksOf(tts []sfu.TapTrack) []sfu.LocalTrack {
	out := make([]sfu.LocalTrack, len(tts))
	for i, t := range tts {
		out[i] = sfu.LocalTrack{Kind: t.Kind, Codec: t.Codec, Clock: t.Clock, Channels: t.Channels, Fmtp: t.Fmtp}
	}
	return out
}

func identityMap(n int) *[]int {
	to := make([]int, n)
	for i := range to {
		to[i] = i
	}
	return &to
}
