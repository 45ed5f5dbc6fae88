package loadtest

import (
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Delivery accounting: what each subscriber received compared with what its
// publisher sent, per stream (one subscription's audio or video) and over
// time. Counting holes between the packets that arrived (LossStats) cannot
// see a stream that stopped: no packet, no hole. These figures can.
//
//   - A stall is a silence of a stream longer than stallAfter, between two
//     packets or from the last packet to the end of the window, while its
//     publisher kept sending that kind.
//   - A stream is stopped when it is in a stall at the end of the window: it
//     went silent and never came back.
//   - A stream's received share is the distinct packets it received in the
//     window over the packets its publisher sent in the window. A simulcast
//     subscriber receives one of three encodings, which one the server's
//     congestion control decides, so simulcast video has no expected count
//     and no share (its stalls are still found: the publisher sends some
//     layer all the time). A stream whose share is below starvedShare is
//     starved.
//
// Stopped and starved streams are errors of the report.
const (
	stallAfter   = time.Second
	starvedShare = 0.5
)

// streamWatch follows the arrivals of one stream. packet runs on the
// stream's read goroutine (the hot path); the rest after the run.
type streamWatch struct {
	last atomic.Int64 // Unix nanoseconds of the latest packet, 0 before the first

	mu   sync.Mutex
	gaps []silence // between two packets, longer than stallAfter
}

// silence is a time without packets, in Unix nanoseconds; to is 0 while it
// lasts.
type silence struct{ from, to int64 }

// packet records a packet's arrival. Hot path: once per packet received.
func (w *streamWatch) packet(at int64) {
	prev := w.last.Load()
	w.last.Store(at)
	if prev != 0 && at-prev > int64(stallAfter) {
		w.mu.Lock()
		w.gaps = append(w.gaps, silence{prev, at})
		w.mu.Unlock()
	}
}

// silences returns the stream's silences longer than stallAfter that
// overlap [start, end], the one still lasting at end included (from start
// if the stream never received a packet).
func (w *streamWatch) silences(start, end int64) []silence {
	w.mu.Lock()
	var out []silence
	for _, g := range w.gaps {
		if g.to > start && g.from < end {
			out = append(out, g)
		}
	}
	w.mu.Unlock()
	last := w.last.Load()
	if last == 0 {
		last = start
	}
	if last < end && end-last > int64(stallAfter) {
		out = append(out, silence{from: last})
	}
	return out
}

// sendLog keeps, for one publisher's kind, when it last sent a packet, as
// seen at each sample: enough to tell whether it was sending during a
// silence of a subscriber's stream.
type sendLog struct {
	at, lastSent []int64 // Unix nanoseconds
}

func (l *sendLog) add(at, lastSent int64) {
	l.at = append(l.at, at)
	l.lastSent = append(l.lastSent, lastSent)
}

// sendingDuring reports whether the publisher sent a packet after from and
// no later than to (to 0: up to now). A silence between two samples cannot
// be judged; it counts as sending, which is what publishers of a load test
// do unless they broke (and then their own counters show it).
func (l *sendLog) sendingDuring(from, to int64) bool {
	i := sort.Search(len(l.at), func(i int) bool { return l.at[i] > from })
	judged := false
	for ; i < len(l.at) && (to == 0 || l.at[i] <= to); i++ {
		judged = true
		if l.lastSent[i] > from {
			return true
		}
	}
	return !judged
}

// Stall is one stall of a stream, in seconds since the window started
// (negative: it began during the warm-up).
type Stall struct {
	FromSec float64 `json:"fromSeconds"`
	ToSec   float64 `json:"toSeconds"`
	// Open: the stream was still silent when the window ended.
	Open bool `json:"open,omitempty"`
}

// Sec is how long the stall lasted within the window.
func (s Stall) Sec() float64 { return s.ToSec - max(0, s.FromSec) }

// StreamReport is one stream's delivery over the window.
type StreamReport struct {
	Stage      int    `json:"stage"`
	Subscriber int    `json:"subscriber"` // within the stage
	Publisher  int    `json:"publisher"`  // within the stage
	Kind       string `json:"kind"`       // "audio" or "video"
	// Sent is what the publisher sent of this kind in the window (0 for
	// simulcast video: see Delivery), Received the distinct packets this
	// stream received, Share their ratio (-1 without Sent).
	Sent     int64   `json:"sent"`
	Received int64   `json:"received"`
	Share    float64 `json:"share"`
	Stalls   []Stall `json:"stalls,omitempty"`
	Stopped  bool    `json:"stopped,omitempty"`
	Starved  bool    `json:"starved,omitempty"`
}

// Delivery compares what the subscribers received with what their
// publishers sent.
type Delivery struct {
	// ExpectedBasis says what a stream was expected to receive.
	ExpectedBasis string `json:"expectedBasis"`
	// VideoShare and AudioShare are the distinct packets received over the
	// packets sent, all streams with an expected count together (-1: none
	// had one); WorstShare the lowest of any one stream.
	VideoShare float64 `json:"videoReceivedShare"`
	AudioShare float64 `json:"audioReceivedShare"`
	WorstShare float64 `json:"worstStreamShare"`
	Expected   int64   `json:"expectedPackets"`
	Received   int64   `json:"receivedPackets"`
	// Stalls counts the stalls of all streams, StalledStreams the streams
	// with at least one; StalledSec their total length in the window and
	// LongestStallSec the longest.
	Stalls          int     `json:"stalls"`
	StalledStreams  int     `json:"stalledStreams"`
	StalledSec      float64 `json:"stalledSeconds"`
	LongestStallSec float64 `json:"longestStallSeconds"`
	// StoppedStreams were silent at the end of the window and
	// StarvedStreams received less than half of what was sent: both are
	// errors of the run.
	StoppedStreams int `json:"stoppedStreams"`
	StarvedStreams int `json:"starvedStreams"`
	// Streams has every stream's figures.
	Streams []StreamReport `json:"streams"`
}

// SeriesPoint is one interval of the window.
type SeriesPoint struct {
	// AtSec is the interval's end, in seconds since the window started.
	AtSec float64 `json:"atSeconds"`
	// Per subscription: the mean packets per second its video and audio
	// received, and the least any subscription received (both kinds).
	VideoPacketsPerSecond float64 `json:"videoPacketsPerSecond"`
	AudioPacketsPerSecond float64 `json:"audioPacketsPerSecond"`
	MinPacketsPerSecond   float64 `json:"minPacketsPerSecond"`
	// Per publisher: the packets per second it sent.
	SentVideoPacketsPerSecond float64 `json:"sentVideoPacketsPerSecond"`
	SentAudioPacketsPerSecond float64 `json:"sentAudioPacketsPerSecond"`
	// ReceivedShare is received over expected in the interval, all streams
	// with an expected count together (-1: none).
	ReceivedShare float64 `json:"receivedShare"`
	// StalledStreams were in a stall at some time in the interval.
	StalledStreams int `json:"stalledStreams"`
	// The server's resident set at the interval's end and its CPU over
	// the interval (0 when not measured).
	ServerRSSBytes int64   `json:"serverRssBytes,omitempty"`
	ServerCores    float64 `json:"serverCores,omitempty"`
}

// streamCounts are one stream's counters at a moment.
type streamCounts struct{ received, sent int64 }

// bucket is what the sampler keeps of one series interval.
type bucket struct {
	start, end     time.Time
	video, audio   int64 // distinct packets received, all subscriptions
	minPerSub      float64
	sentV, sentA   int64 // packets sent, all publishers
	recvExp, exp   int64 // received and expected, streams with an expected count
	rss            int64
	cores          float64
	stalled        int // filled after the run
	subscriptions  int
	publishers     int
	measuredServer bool
}

func (b *bucket) point(origin time.Time) SeriesPoint {
	sec := b.end.Sub(b.start).Seconds()
	p := SeriesPoint{AtSec: b.end.Sub(origin).Seconds(), ReceivedShare: -1, StalledStreams: b.stalled}
	if sec <= 0 {
		return p
	}
	if b.subscriptions > 0 {
		p.VideoPacketsPerSecond = float64(b.video) / sec / float64(b.subscriptions)
		p.AudioPacketsPerSecond = float64(b.audio) / sec / float64(b.subscriptions)
		p.MinPacketsPerSecond = b.minPerSub / sec
	}
	if b.publishers > 0 {
		p.SentVideoPacketsPerSecond = float64(b.sentV) / sec / float64(b.publishers)
		p.SentAudioPacketsPerSecond = float64(b.sentA) / sec / float64(b.publishers)
	}
	if b.exp > 0 {
		p.ReceivedShare = float64(b.recvExp) / float64(b.exp)
	}
	if b.measuredServer {
		p.ServerRSSBytes, p.ServerCores = b.rss, b.cores
	}
	return p
}

// streamFigures works out one stream's stalls, stop and share over the
// window [start, end] from its silences, its counts at both ends and its
// publisher's send log. expect is false when the stream has no expected
// count (simulcast video).
func streamFigures(r *StreamReport, sil []silence, log *sendLog, before, after streamCounts, expect bool, start, end int64) {
	r.Received = after.received - before.received
	r.Share = -1
	if expect {
		r.Sent = after.sent - before.sent
		if r.Sent > 0 {
			r.Share = float64(r.Received) / float64(r.Sent)
			r.Starved = r.Share < starvedShare
		}
	}
	sec := func(t int64) float64 { return float64(t-start) / 1e9 }
	for _, g := range sil {
		if log != nil && !log.sendingDuring(g.from, g.to) {
			continue // the publisher was not sending either
		}
		st := Stall{FromSec: sec(g.from), ToSec: sec(g.to)}
		if g.to == 0 || g.to > end {
			st.ToSec, st.Open = sec(end), g.to == 0
		}
		r.Stalls = append(r.Stalls, st)
		r.Stopped = r.Stopped || st.Open
	}
}

// summarize fills the Delivery totals from its streams, and the stall
// counts of the series buckets.
func (d *Delivery) summarize(buckets []bucket, origin time.Time) {
	d.VideoShare, d.AudioShare, d.WorstShare = -1, -1, -1
	var vr, ve, ar, ae int64
	for _, s := range d.Streams {
		if s.Share >= 0 {
			if s.Kind == "video" {
				vr, ve = vr+s.Received, ve+s.Sent
			} else {
				ar, ae = ar+s.Received, ae+s.Sent
			}
			if d.WorstShare < 0 || s.Share < d.WorstShare {
				d.WorstShare = s.Share
			}
		}
		if len(s.Stalls) > 0 {
			d.StalledStreams++
		}
		d.Stalls += len(s.Stalls)
		for _, st := range s.Stalls {
			d.StalledSec += st.Sec()
			d.LongestStallSec = max(d.LongestStallSec, st.Sec())
		}
		if s.Stopped {
			d.StoppedStreams++
		}
		if s.Starved {
			d.StarvedStreams++
		}
		for i := range buckets {
			b0, b1 := buckets[i].start.Sub(origin).Seconds(), buckets[i].end.Sub(origin).Seconds()
			for _, st := range s.Stalls {
				if st.FromSec < b1 && st.ToSec > b0 {
					buckets[i].stalled++
					break
				}
			}
		}
	}
	if ve > 0 {
		d.VideoShare = float64(vr) / float64(ve)
	}
	if ae > 0 {
		d.AudioShare = float64(ar) / float64(ae)
	}
	d.Expected, d.Received = ve+ae, vr+ar
}

// problems are the error kinds of a delivery: stopped and starved streams,
// by kind, with how many.
func (d *Delivery) problems() (n int, kinds []string) {
	var stopped, starved [2]int
	for _, s := range d.Streams {
		k := kindIndex(s.Kind)
		if s.Stopped {
			stopped[k]++
		}
		if s.Starved && !s.Stopped {
			starved[k]++
		}
	}
	for k, name := range []string{"audio", "video"} {
		if stopped[k] > 0 {
			n += stopped[k]
			kinds = append(kinds, fmt.Sprintf("stream stopped: the %s of %d subscription(s) went silent and did not come back while the publisher kept sending", name, stopped[k]))
		}
		if starved[k] > 0 {
			n += starved[k]
			kinds = append(kinds, fmt.Sprintf("stream starved: the %s of %d subscription(s) received less than %.0f %% of the packets the publisher sent", name, starved[k], starvedShare*100))
		}
	}
	return n, kinds
}
