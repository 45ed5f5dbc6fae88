package loadtest

import (
	"fmt"
	"strings"
	"time"

	"github.com/rostrum-dev/rostrum/internal/rtclient"
)

// sampleEvery is how often the recorder notes when each publisher last
// sent: often enough that every stall (over a second) holds a sample.
const sampleEvery = 250 * time.Millisecond

// recorder follows a measured window: publishers' sends, every stream's
// counts at each series point, the server's memory and CPU.
type recorder struct {
	m      *mediaRun
	origin time.Time

	logs     [][2]sendLog // per publisher (as m.pubs), per kind
	pubFirst [][2]int64   // packets sent at the window's start
	pubPrev  [][2]int64   // at the last series point
	subFirst [][2]int64   // per subscription, distinct packets received at the start
	subPrev  [][2]int64

	srvPrev procSample
	srvOK   bool

	buckets   []bucket
	bucketAt  time.Time
	lastPoint SeriesPoint
}

func newRecorder(m *mediaRun, start time.Time, srv procSample, srvOK bool) *recorder {
	r := &recorder{
		m: m, origin: start, bucketAt: start, srvPrev: srv, srvOK: srvOK,
		logs:    make([][2]sendLog, len(m.pubs)),
		pubPrev: make([][2]int64, len(m.pubs)),
		subPrev: make([][2]int64, len(m.subs)),
	}
	for i, p := range m.pubs {
		r.pubPrev[i], _ = publisherCounts(p)
	}
	for i, s := range m.subs {
		r.subPrev[i] = subscriptionCounts(s)
	}
	r.pubFirst = append([][2]int64(nil), r.pubPrev...)
	r.subFirst = append([][2]int64(nil), r.subPrev...)
	return r
}

// publisherCounts are the packets a publisher has sent of each kind (all
// simulcast layers together), and when it last sent one (Unix ns).
func publisherCounts(p *rtclient.Publisher) (sent, last [2]int64) {
	for _, kind := range p.Kinds() {
		k := kAudio
		if strings.HasPrefix(kind, rtclient.KindVideo) {
			k = kVideo
		}
		st := p.Stats(kind)
		sent[k] += st.Packets
		if !st.LastPacket.IsZero() {
			last[k] = max(last[k], st.LastPacket.UnixNano())
		}
	}
	return sent, last
}

// subscriptionCounts are the distinct packets a subscription has received
// of each kind: retransmitted duplicates and packets too late to place left
// out, so that they compare with what the publisher sent.
func subscriptionCounts(s *subscription) (n [2]int64) {
	if s.sub == nil {
		return n
	}
	for k, kind := range []string{rtclient.KindAudio, rtclient.KindVideo} {
		st := s.sub.Stats(kind)
		n[k] = st.Packets - st.Duplicates - st.Late
	}
	return n
}

// sample notes when each publisher last sent.
func (r *recorder) sample(now time.Time) {
	for i, p := range r.m.pubs {
		_, last := publisherCounts(p)
		for k := range 2 {
			r.logs[i][k].add(now.UnixNano(), last[k])
		}
	}
}

// hasExpected tells whether a stream of kind k has an expected count.
func (r *recorder) hasExpected(k int) bool {
	return k == kAudio || !r.m.o.Simulcast
}

// published tells whether the publishers send kind k at all.
func (r *recorder) published(k int) bool {
	if k == kAudio {
		return !r.m.o.NoAudio
	}
	return !r.m.o.NoVideo
}

// closeBucket ends the current series interval at now.
func (r *recorder) closeBucket(now time.Time) {
	if now.Sub(r.bucketAt) < sampleEvery {
		return // nothing worth a point (the window ended just after one)
	}
	b := bucket{start: r.bucketAt, end: now, minPerSub: -1, publishers: len(r.m.pubs)}
	pubDelta := make([][2]int64, len(r.m.pubs))
	for i, p := range r.m.pubs {
		sent, _ := publisherCounts(p)
		for k := range 2 {
			pubDelta[i][k] = sent[k] - r.pubPrev[i][k]
		}
		b.sentA += pubDelta[i][kAudio]
		b.sentV += pubDelta[i][kVideo]
		r.pubPrev[i] = sent
	}
	for i, s := range r.m.subs {
		if s.sub == nil {
			continue
		}
		b.subscriptions++
		c := subscriptionCounts(s)
		var total int64
		for k := range 2 {
			if !r.published(k) {
				continue
			}
			d := c[k] - r.subPrev[i][k]
			total += d
			if k == kVideo {
				b.video += d
			} else {
				b.audio += d
			}
			if r.hasExpected(k) {
				b.recvExp += d
				b.exp += pubDelta[r.m.pubIndex(s)][k]
			}
		}
		if b.minPerSub < 0 || float64(total) < b.minPerSub {
			b.minPerSub = float64(total)
		}
		r.subPrev[i] = c
	}
	if b.minPerSub < 0 {
		b.minPerSub = 0
	}
	if r.srvOK {
		if srv, err := readProcIf(r.m.t.ServerPID); err == nil {
			b.measuredServer, b.rss, b.cores = true, srv.rss, cores(r.srvPrev, srv)
			r.srvPrev = srv
		}
	}
	r.buckets = append(r.buckets, b)
	r.bucketAt = now
	r.lastPoint = b.point(r.origin)
}

// progress is a line about the latest series point. Before the first
// (one --series-interval into the window) it says so rather than print
// zeros that look like nothing arriving.
func (r *recorder) progress(now time.Time) string {
	p := r.lastPoint
	var line string
	if len(r.buckets) == 0 {
		line = fmt.Sprintf("%4.0fs: figures from the first series point on", now.Sub(r.origin).Seconds())
	} else {
		line = fmt.Sprintf("%4.0fs: %s packets/s per subscription (least %s)", now.Sub(r.origin).Seconds(),
			thousands(p.VideoPacketsPerSecond+p.AudioPacketsPerSecond), thousands(p.MinPacketsPerSecond))
		if p.ReceivedShare >= 0 {
			line += fmt.Sprintf(", %.2f %% of sent", 100*p.ReceivedShare)
		}
	}
	silent := 0
	for _, s := range r.m.subs {
		for k := range 2 {
			if s.sub != nil && r.published(k) {
				if last := s.watch[k].last.Load(); last == 0 || now.UnixNano()-last > int64(stallAfter) {
					silent++
				}
			}
		}
	}
	if silent > 0 {
		line += fmt.Sprintf(", %d stream(s) silent", silent)
	}
	if p.ServerRSSBytes > 0 {
		line += fmt.Sprintf(", server %.2f cores, RSS %s", p.ServerCores, mib(p.ServerRSSBytes))
	}
	return line
}

// fill puts the delivery figures and the series into the report.
func (r *recorder) fill(rep *MediaReport) {
	start := r.origin.UnixNano()
	end := r.bucketAt.UnixNano()
	d := &rep.Delivery
	d.ExpectedBasis = "every packet its publisher sent of the kind in the window"
	if r.m.o.Simulcast {
		d.ExpectedBasis = "audio: every packet its publisher sent in the window; simulcast video: none (the server picks the layer), stalls only"
	}
	for i, s := range r.m.subs {
		if s.sub == nil {
			continue
		}
		pi := r.m.pubIndex(s)
		for k := range 2 {
			if !r.published(k) {
				continue
			}
			sr := StreamReport{Stage: s.stage, Subscriber: s.participant, Publisher: s.publisher, Kind: []string{"audio", "video"}[k]}
			streamFigures(&sr, s.watch[k].silences(start, end), &r.logs[pi][k],
				streamCounts{received: r.subFirst[i][k], sent: r.pubFirst[pi][k]},
				streamCounts{received: r.subPrev[i][k], sent: r.pubPrev[pi][k]},
				r.hasExpected(k), start, end)
			d.Streams = append(d.Streams, sr)
		}
	}
	d.summarize(r.buckets, r.origin)
	rep.SeriesIntervalSec = r.m.o.SeriesInterval.Seconds()
	rep.Series = make([]SeriesPoint, len(r.buckets))
	for i := range r.buckets {
		rep.Series[i] = r.buckets[i].point(r.origin)
	}
}
