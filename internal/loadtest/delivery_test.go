package loadtest

import (
	"strings"
	"testing"
	"time"
)

const sec = int64(time.Second)

// steadyLog is a publisher's send log: a sample every 250 ms from t0 to t1
// (seconds), sending all along until stop (seconds; 0: never stops).
func steadyLog(t0, t1, stop float64) *sendLog {
	var l sendLog
	for t := t0; t <= t1; t += 0.25 {
		last := t - 0.01
		if stop > 0 && last > stop {
			last = stop
		}
		l.add(int64(t*float64(sec)), int64(last*float64(sec)))
	}
	return &l
}

func at(s float64) int64 { return int64(s * float64(sec)) }

func TestStreamWatchSilences(t *testing.T) {
	var w streamWatch
	// 100 packets/s for 2 s, silent 1.5 s, 100 packets/s to 6 s, then nothing.
	for ms := 1000; ms <= 3000; ms += 10 {
		w.packet(at(float64(ms) / 1000))
	}
	for ms := 4500; ms <= 6000; ms += 10 {
		w.packet(at(float64(ms) / 1000))
	}
	got := w.silences(at(0), at(10))
	if len(got) != 2 || got[0] != (silence{at(3), at(4.5)}) || got[1] != (silence{from: at(6)}) {
		t.Fatalf("silences = %v, want 3–4.5 s and 6 s to the end", got)
	}
	// A window that ends before the open one is long enough, and one that
	// starts after the first: only what overlaps.
	if got := w.silences(at(4), at(6.5)); len(got) != 1 || got[0].from != at(3) {
		t.Fatalf("silences in 4–6.5 s = %v", got)
	}
	// Gaps under a second are not silences.
	var v streamWatch
	for ms := 0; ms <= 5000; ms += 900 {
		v.packet(at(float64(ms) / 1000))
	}
	if got := v.silences(at(0), at(5.1)); len(got) != 0 {
		t.Fatalf("900 ms gaps: %v", got)
	}
	// A stream that never received: silent from the window's start.
	var never streamWatch
	if got := never.silences(at(2), at(5)); len(got) != 1 || got[0] != (silence{from: at(2)}) {
		t.Fatalf("never received: %v", got)
	}
}

func TestSendLogSendingDuring(t *testing.T) {
	l := steadyLog(0, 10, 6) // stops sending at 6 s
	if !l.sendingDuring(at(2), at(3.5)) {
		t.Error("sending at 2–3.5 s")
	}
	if l.sendingDuring(at(7), at(9)) || l.sendingDuring(at(7), 0) {
		t.Error("not sending after 6 s")
	}
	if !l.sendingDuring(at(5.5), at(8)) {
		t.Error("sending at 5.5–6 s")
	}
	// No sample inside: cannot be judged, counts as sending.
	if !l.sendingDuring(at(20), at(21)) {
		t.Error("unjudged silence")
	}
}

// The stream of issue 15: video received at 187 packets/s for 170 s of a
// 480 s window, then nothing while the publisher kept sending. The old
// report said loss 0 % and no errors; this accounting must call it stopped.
func TestStoppedStreamIsAnError(t *testing.T) {
	var w streamWatch
	const rate = 187.0
	n := int64(0)
	for i := 0; float64(i)/rate < 170; i++ {
		w.packet(at(float64(i) / rate))
		n++
	}
	sent := int64(480 * rate)
	var r StreamReport
	r.Kind = "video"
	streamFigures(&r, w.silences(0, at(480)), steadyLog(0, 480, 0), streamCounts{}, streamCounts{received: n, sent: sent}, true, 0, at(480))
	if !r.Stopped || len(r.Stalls) != 1 || !r.Stalls[0].Open || r.Stalls[0].ToSec != 480 {
		t.Fatalf("stream %+v: want one open stall to the end", r)
	}
	if r.Share < 0.35 || r.Share > 0.36 || !r.Starved {
		t.Fatalf("share %.3f starved %v, want about 0.354 and starved", r.Share, r.Starved)
	}
	audio := StreamReport{Kind: "audio", Sent: 24000, Received: 24000, Share: 1}
	d := Delivery{Streams: []StreamReport{r, audio}}
	buckets := []bucket{
		{start: time.Unix(0, 0), end: time.Unix(160, 0)},
		{start: time.Unix(160, 0), end: time.Unix(320, 0)},
		{start: time.Unix(320, 0), end: time.Unix(480, 0)},
	}
	d.summarize(buckets, time.Unix(0, 0))
	if d.StoppedStreams != 1 || d.StarvedStreams != 1 || d.Stalls != 1 || d.StalledStreams != 1 {
		t.Fatalf("delivery %+v", d)
	}
	if d.LongestStallSec < 309 || d.LongestStallSec > 311 {
		t.Fatalf("longest stall %.1f s, want about 310", d.LongestStallSec)
	}
	if d.VideoShare != r.Share || d.AudioShare != 1 || d.WorstShare != r.Share {
		t.Fatalf("shares: video %.3f audio %.3f worst %.3f", d.VideoShare, d.AudioShare, d.WorstShare)
	}
	if buckets[0].stalled != 0 || buckets[1].stalled != 1 || buckets[2].stalled != 1 {
		t.Fatalf("stalled streams per interval: %d %d %d, want 0 1 1", buckets[0].stalled, buckets[1].stalled, buckets[2].stalled)
	}
	n2, kinds := d.problems()
	if n2 != 1 || len(kinds) != 1 || !strings.Contains(kinds[0], "stream stopped: the video of 1 subscription") {
		t.Fatalf("problems = %d %q: a stopped stream is one error (not also a starved one)", n2, kinds)
	}
}

func TestRecoveredStallAndStarvedStream(t *testing.T) {
	// Silent 2–4 s and back: a stall, not an error.
	var w streamWatch
	for ms := 0; ms <= 10000; ms += 20 {
		if ms > 2000 && ms < 4000 {
			continue
		}
		w.packet(at(float64(ms) / 1000))
	}
	var r StreamReport
	streamFigures(&r, w.silences(0, at(10)), steadyLog(0, 10, 0), streamCounts{}, streamCounts{received: 400, sent: 500}, true, 0, at(10))
	if r.Stopped || r.Starved || len(r.Stalls) != 1 || r.Stalls[0].Open || r.Stalls[0].Sec() < 1.9 || r.Stalls[0].Sec() > 2.1 {
		t.Fatalf("recovered stall: %+v", r)
	}
	if d := (Delivery{Streams: []StreamReport{r}}); func() int { n, _ := d.problems(); return n }() != 0 {
		t.Fatal("a recovered stall is not an error")
	}
	// The same silence while the publisher sent nothing either: no stall.
	var q StreamReport
	quiet := steadyLog(0, 10, 0)
	for i := range quiet.at {
		if quiet.at[i] > at(2) && quiet.at[i] <= at(4) { // resumes just after 4 s
			quiet.lastSent[i] = at(2)
		}
	}
	streamFigures(&q, w.silences(0, at(10)), quiet, streamCounts{}, streamCounts{received: 400, sent: 400}, true, 0, at(10))
	if len(q.Stalls) != 0 {
		t.Fatalf("silence of a silent publisher counted as a stall: %+v", q)
	}
	// Packets keep coming but far fewer than were sent: starved.
	var s StreamReport
	s.Kind = "audio"
	streamFigures(&s, nil, steadyLog(0, 10, 0), streamCounts{received: 100, sent: 100}, streamCounts{received: 300, sent: 1100}, true, 0, at(10))
	if !s.Starved || s.Stopped || s.Share != 0.2 || s.Sent != 1000 || s.Received != 200 {
		t.Fatalf("starved stream: %+v", s)
	}
	n, kinds := (&Delivery{Streams: []StreamReport{s}}).problems()
	if n != 1 || !strings.Contains(kinds[0], "stream starved: the audio of 1") {
		t.Fatalf("problems = %d %q", n, kinds)
	}
	// Simulcast video has no expected count: no share, never starved.
	var v StreamReport
	streamFigures(&v, nil, nil, streamCounts{}, streamCounts{received: 10, sent: 1000}, false, 0, at(10))
	if v.Share != -1 || v.Starved || v.Sent != 0 {
		t.Fatalf("simulcast video: %+v", v)
	}
}

func TestSeriesPointsAndMerge(t *testing.T) {
	o := time.Unix(100, 0)
	b := bucket{start: o, end: o.Add(5 * time.Second), video: 2 * 5 * 180, audio: 2 * 5 * 50, minPerSub: 5 * 200,
		sentV: 5 * 180, sentA: 5 * 50, recvExp: 2 * 5 * 230, exp: 2 * 5 * 230, subscriptions: 2, publishers: 1,
		measuredServer: true, rss: 50 << 20, cores: 0.5}
	p := b.point(o)
	if p.AtSec != 5 || p.VideoPacketsPerSecond != 180 || p.AudioPacketsPerSecond != 50 || p.MinPacketsPerSecond != 200 ||
		p.SentVideoPacketsPerSecond != 180 || p.ReceivedShare != 1 || p.ServerRSSBytes != 50<<20 || p.ServerCores != 0.5 {
		t.Fatalf("point %+v", p)
	}
	q := p
	q.AtSec, q.VideoPacketsPerSecond, q.MinPacketsPerSecond, q.ReceivedShare, q.StalledStreams, q.ServerRSSBytes = 10, 0, 50, 0.5, 1, 60<<20
	m := mergePoints([]SeriesPoint{p, q})
	if m.AtSec != 10 || m.VideoPacketsPerSecond != 90 || m.MinPacketsPerSecond != 50 || m.ReceivedShare != 0.75 || m.StalledStreams != 1 || m.ServerRSSBytes != 60<<20 {
		t.Fatalf("merged %+v", m)
	}
	if e := (&bucket{start: o, end: o.Add(time.Second)}).point(o); e.ReceivedShare != -1 || e.ServerRSSBytes != 0 {
		t.Fatalf("empty point %+v", e)
	}
}

// Before the first series point the progress line says the figures are to
// come, not "0 packets/s", which reads as nothing arriving; from the first
// point on it gives that point's figures.
func TestProgressBeforeTheFirstSeriesPoint(t *testing.T) {
	origin := time.Unix(1000, 0)
	r := &recorder{m: &mediaRun{}, origin: origin}
	if line := r.progress(origin.Add(5 * time.Second)); strings.Contains(line, "packets/s") || !strings.Contains(line, "first series point") {
		t.Errorf("before any point: %q", line)
	}
	r.buckets = append(r.buckets, bucket{})
	r.lastPoint = SeriesPoint{VideoPacketsPerSecond: 187, AudioPacketsPerSecond: 50, MinPacketsPerSecond: 237, ReceivedShare: 1}
	if line := r.progress(origin.Add(65 * time.Second)); !strings.Contains(line, "237 packets/s per subscription (least 237), 100.00 % of sent") {
		t.Errorf("after the first point: %q", line)
	}
}
