package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// MediaReport is the result of RunMedia. Rates are over the measured window;
// bitrates count RTP headers and payload (not SRTP, UDP or IP overhead).
type MediaReport struct {
	Mode     string `json:"mode"` // "media"
	Endpoint string `json:"endpoint"`
	// ServerDescription says how the server ran; Server has its figures.
	ServerDescription string `json:"server,omitempty"`
	Generator         string `json:"generator"`
	Load              Load   `json:"load"`

	// StreamsForwarded counts the subscriptions' tracks that received
	// media during the window.
	StreamsForwarded int `json:"streamsForwarded"`
	VideoStreams     int `json:"videoStreams"`
	AudioStreams     int `json:"audioStreams"`

	Joins JoinStats `json:"joins"`
	// PerSubscriber are the mean rates one subscription's video and audio
	// tracks received; Total, all subscriptions together.
	Video TrackRates `json:"perSubscriberVideo"`
	Audio TrackRates `json:"perSubscriberAudio"`
	Total TrackRates `json:"total"`
	// Loss counts holes between the packets that arrived; Delivery
	// compares what arrived with what the publishers sent, which also sees
	// streams that stopped.
	Loss     LossStats `json:"loss"`
	Delivery Delivery  `json:"delivery"`
	// UDPDrops are the datagrams the kernel dropped on arrival during the
	// window, from /proc/net/snmp. The counters are machine-wide: they
	// count the server's socket, the generator's and any other process's
	// alike; on loopback with nothing else receiving UDP, a rise in
	// RcvbufErrors is the server's or the generator's socket overflowing.
	UDPDrops UDPDrops `json:"udpDrops"`
	// ForwardDelay is the server's own share of the latency, from its
	// metrics (fwddelay.go).
	ForwardDelay ForwardDelay `json:"forwardDelay"`
	// Jitter is RFC 3550's interarrival jitter at the subscribers, in
	// milliseconds: the mean over subscriptions, and the largest.
	Jitter JitterStats `json:"jitterMs"`
	// Latency is the forwarding latency, publisher send → subscriber
	// receive, of every packet received in the window that carried its
	// frame's send time. It includes both ends' own work (SRTP,
	// pion's queues) in this process.
	Latency Percentiles `json:"latency"`

	Server         ServerStats `json:"serverStats"`
	GeneratorCores float64     `json:"generatorCores"`
	// MachineCores is the whole machine's busy CPU in the window, and
	// OtherCores what neither the server nor the generator used: on a
	// shared machine, CPU the test did not get.
	MachineCores float64    `json:"machineBusyCores"`
	OtherCores   float64    `json:"otherProcessesCores"`
	Errors       ErrorStats `json:"errors"`
	WindowSec    float64    `json:"windowSeconds"`

	// Series is the window in intervals of SeriesIntervalSec: packets per
	// subscription, the share of what was sent that arrived, stalled
	// streams, the server's memory and CPU. For soaks.
	SeriesIntervalSec float64       `json:"seriesIntervalSeconds"`
	Series            []SeriesPoint `json:"series"`
}

// Load is what was asked for.
type Load struct {
	Stages              int    `json:"stages"`
	PublishersPerStage  int    `json:"publishersPerStage"`
	SubscribersPerStage int    `json:"subscribersPerStage"`
	Subscriptions       int    `json:"subscriptions"`
	VideoFile           string `json:"videoFile,omitempty"`
	Codec               string `json:"codec,omitempty"`
	VideoBitrate        int    `json:"videoBitrate,omitempty"`
	Width               int    `json:"width,omitempty"`
	Height              int    `json:"height,omitempty"`
	FPS                 int    `json:"fps,omitempty"`
	Simulcast           bool   `json:"simulcast"`
	// Pacing is how the publishers' video packets leave: zero when each
	// frame's are written back to back (unpaced).
	Pacing      Pacing  `json:"pacing"`
	Audio       bool    `json:"audio"`
	Events      bool    `json:"events"`
	DurationSec float64 `json:"durationSeconds"`
	WarmupSec   float64 `json:"warmupSeconds"`
	JoinRate    float64 `json:"joinRate"`
}

// Pacing is the publishers' pacer (MediaOptions.Pace): Multiple times the
// video bitrate, Rate bits per second, bursts of up to BurstMs at that rate.
type Pacing struct {
	Multiple float64 `json:"multiple"`
	Rate     int     `json:"rate"`
	BurstMs  float64 `json:"burstMs"`
}

// String describes the pacing for the report's table.
func (p Pacing) String() string {
	if p.Rate <= 0 {
		return "unpaced: each frame's packets back to back"
	}
	return fmt.Sprintf("paced at %g × the video bitrate = %s, bursts up to %g ms of it", p.Multiple, bitrate(float64(p.Rate)), p.BurstMs)
}

// JoinStats are the subscriptions' joins: from calling Subscribe (offer,
// ICE gathering, POST, ICE and DTLS) to the connection being up, and to the
// first video packet (audio without video), which the server forwards from
// a keyframe.
type JoinStats struct {
	Attempted    int         `json:"attempted"`
	OK           int         `json:"ok"`
	Failed       int         `json:"failed"`
	Connect      Percentiles `json:"connect"`
	ToFirstFrame Percentiles `json:"toFirstFrame"`
	// ConnectedToFirstFrame is the wait between the two, per subscription:
	// for the keyframe to start on, which the server replays from its cache
	// or asks the publisher for (0 when the first packet came before the
	// client saw its connection up).
	ConnectedToFirstFrame Percentiles `json:"connectedToFirstFrame"`
	// NoMedia counts joined subscriptions that received nothing in the window.
	NoMedia int `json:"noMedia"`
}

// TrackRates are packet and bit rates.
type TrackRates struct {
	PacketsPerSecond float64 `json:"packetsPerSecond"`
	BitsPerSecond    float64 `json:"bitsPerSecond"`
	// MinBitsPerSecond is the least any one subscription received (per
	// subscriber rates only).
	MinBitsPerSecond float64 `json:"minBitsPerSecond,omitempty"`
}

// LossStats are the sequence numbers never received (after NACK and
// retransmission) over those expected, in the window.
type LossStats struct {
	VideoPercent float64 `json:"videoPercent"`
	AudioPercent float64 `json:"audioPercent"`
	Lost         int64   `json:"lost"`
	Expected     int64   `json:"expected"`
	// NACKedSeqs counts the sequence numbers subscribers asked again for;
	// NACKedPercent is that over the packets expected: the share that did
	// not arrive the first time (raw gaps), whether or not a
	// retransmission repaired it. A sequence number NACKed twice counts
	// twice.
	NACKedSeqs    int64   `json:"nackedSeqs"`
	NACKedPercent float64 `json:"nackedPercent"`
	// RawGaps counts the sequence numbers that were skipped when a higher
	// one arrived, each once: the packets that did not arrive the first
	// time, whether or not NACK brought them later (Repaired counts those
	// that came after a higher one). RawGapPercent is that over the packets
	// expected. bench/livekit counts LiveKit's the same way.
	RawGaps       int64   `json:"rawGaps"`
	RawGapPercent float64 `json:"rawGapPercent"`
	Repaired      int64   `json:"repaired"`
	// Duplicates counts packets received again that a subscription already
	// had (a retransmission of a packet that was not lost, or one sent
	// twice); DuplicatePercent is that over the packets expected. Above
	// what NACKs that crossed their repair explain, it is a server
	// forwarding a packet twice.
	Duplicates       int64   `json:"duplicates"`
	DuplicatePercent float64 `json:"duplicatePercent"`
	// WorstPercent is the highest loss of any one subscription's video.
	WorstPercent float64 `json:"worstSubscriptionPercent"`
}

// UDPDrops are the rises of the kernel's UDP error counters over the
// window (see UDPCounters); Measured is false where /proc/net/snmp could
// not be read.
type UDPDrops struct {
	Measured bool `json:"measured"`
	UDPCounters
	// ServerSocketDrops are the drops counted on the server's own UDP
	// sockets (per socket, /proc/net/udp): the publishers' packets the
	// server never read. ServerMeasured is false without a server pid.
	ServerMeasured    bool  `json:"serverMeasured"`
	ServerSocketDrops int64 `json:"serverSocketDrops"`
}

// JitterStats summarise RFC 3550 jitter over subscriptions.
type JitterStats struct {
	VideoMean float64 `json:"videoMean"`
	VideoMax  float64 `json:"videoMax"`
	AudioMean float64 `json:"audioMean"`
	AudioMax  float64 `json:"audioMax"`
}

// ForwardDelay is rostrum_media_forward_delay_seconds over the window: per
// packet a publisher sent, from the server reading it to its last
// subscriber's send. Quantiles are interpolated within the histogram's
// buckets (0.1, 0.25, 0.5, 1, 2, 5 ms, ...).
type ForwardDelay struct {
	Measured bool    `json:"measured"` // the server's /metrics had it
	Packets  int64   `json:"packets"`
	P50Ms    float64 `json:"p50Ms"`
	P99Ms    float64 `json:"p99Ms"`
	P999Ms   float64 `json:"p999Ms"`
}

// ServerStats are read from /proc/<pid> (Target.ServerPID).
type ServerStats struct {
	Measured bool `json:"measured"`
	// Cores is the CPU the server used in the window (1 = one core busy).
	Cores float64 `json:"cores"`
	// CPUPerPacketMicros is that CPU time over the packets the subscribers
	// received; PacketsPerSecondPerCore is its inverse, the forwarding
	// capacity of one core at this load.
	CPUPerPacketMicros      float64 `json:"cpuPerPacketMicros"`
	PacketsPerSecondPerCore float64 `json:"packetsPerSecondPerCore"`
	RSSBytes                int64   `json:"rssBytes"`
	PeakRSSBytes            int64   `json:"peakRssBytes"`
	// RSSWithPublishersOnlyBytes is the resident set before any subscriber
	// joined; MemoryPerSubscriptionBytes what each subscription added.
	RSSWithPublishersOnlyBytes int64 `json:"rssWithPublishersOnlyBytes"`
	MemoryPerSubscriptionBytes int64 `json:"memoryPerSubscriptionBytes"`
	Threads                    int   `json:"threads"`
}

// ErrorStats count failures of any kind: joins, events, connections that
// died in the window, streams that stopped or starved (see Delivery).
type ErrorStats struct {
	Count int      `json:"count"`
	Kinds []string `json:"kinds,omitempty"` // up to five distinct ones
}

func newMediaReport(t Target, o MediaOptions) *MediaReport {
	r := &MediaReport{
		Mode: "media", Endpoint: t.Endpoint, ServerDescription: t.ServerDescription, Generator: generatorDescription(),
		Load: Load{
			Stages: o.Stages, PublishersPerStage: o.Publishers, SubscribersPerStage: o.Subscribers,
			Subscriptions: o.Stages * o.Publishers * o.Subscribers,
			Simulcast:     o.Simulcast, Audio: !o.NoAudio, Events: o.Events,
			DurationSec: o.Duration.Seconds(), WarmupSec: o.Warmup.Seconds(), JoinRate: o.JoinRate,
		},
	}
	if !o.NoVideo {
		r.Load.Codec, r.Load.VideoBitrate, r.Load.Width, r.Load.Height, r.Load.FPS = o.Codec, o.VideoBitrate, o.Width, o.Height, o.FPS
	}
	return r
}

// fill computes the report's figures from the subscriptions' counters.
func (m *mediaRun) fill(r *MediaReport, window time.Duration) {
	sec := window.Seconds()
	r.WindowSec = sec
	var connect, first, wait histogram
	var vPkts, vBytes, aPkts, aBytes float64
	var vLost, vExp, aLost, aExp int64
	minVideo := -1.0
	var jv, ja []float64
	for _, s := range m.subs {
		r.Joins.Attempted++
		if s.sub == nil {
			r.Joins.Failed++
			continue
		}
		r.Joins.OK++
		connect.record(s.connected.Sub(s.started))
		firstKind := kVideo
		if m.o.NoVideo {
			firstKind = kAudio
		}
		if fp := s.after[firstKind].FirstPacket; !fp.IsZero() {
			first.record(fp.Sub(s.started))
			wait.record(max(0, fp.Sub(s.connected)))
		}
		got := false
		for k := range 2 {
			a, b := s.before[k], s.after[k]
			dp := b.Packets - a.Packets
			if dp <= 0 {
				continue
			}
			got = true
			db := b.Bytes - a.Bytes
			lost := max(0, b.Lost-a.Lost)
			distinct := dp - (b.Duplicates - a.Duplicates) - (b.Late - a.Late)
			exp := distinct + lost
			r.Loss.NACKedSeqs += b.NACKedSeqs - a.NACKedSeqs
			r.Loss.RawGaps += b.Gaps - a.Gaps
			r.Loss.Repaired += b.Filled - a.Filled
			r.Loss.Duplicates += b.Duplicates - a.Duplicates
			if k == kVideo {
				r.VideoStreams++
				vPkts += float64(dp)
				vBytes += float64(db)
				vLost += lost
				vExp += exp
				bps := float64(db) * 8 / sec
				if minVideo < 0 || bps < minVideo {
					minVideo = bps
				}
				if exp > 0 {
					r.Loss.WorstPercent = max(r.Loss.WorstPercent, 100*float64(lost)/float64(exp))
				}
				jv = append(jv, s.jit[kVideo].ms())
			} else {
				r.AudioStreams++
				aPkts += float64(dp)
				aBytes += float64(db)
				aLost += lost
				aExp += exp
				ja = append(ja, s.jit[kAudio].ms())
			}
		}
		if !got {
			r.Joins.NoMedia++
		}
		select {
		case <-s.sub.Done():
			m.fail("connection", fmt.Errorf("a subscriber's peer connection closed or failed during the run"))
		default:
		}
	}
	r.StreamsForwarded = r.VideoStreams + r.AudioStreams
	r.Joins.Connect, r.Joins.ToFirstFrame, r.Joins.ConnectedToFirstFrame = connect.percentiles(), first.percentiles(), wait.percentiles()
	if r.VideoStreams > 0 {
		r.Video = TrackRates{PacketsPerSecond: vPkts / sec / float64(r.VideoStreams), BitsPerSecond: vBytes * 8 / sec / float64(r.VideoStreams), MinBitsPerSecond: minVideo}
	}
	if r.AudioStreams > 0 {
		r.Audio = TrackRates{PacketsPerSecond: aPkts / sec / float64(r.AudioStreams), BitsPerSecond: aBytes * 8 / sec / float64(r.AudioStreams)}
	}
	r.Total = TrackRates{PacketsPerSecond: (vPkts + aPkts) / sec, BitsPerSecond: (vBytes + aBytes) * 8 / sec}
	r.Loss.Lost, r.Loss.Expected = vLost+aLost, vExp+aExp
	if vExp > 0 {
		r.Loss.VideoPercent = 100 * float64(vLost) / float64(vExp)
	}
	if aExp > 0 {
		r.Loss.AudioPercent = 100 * float64(aLost) / float64(aExp)
	}
	if r.Loss.Expected > 0 {
		r.Loss.NACKedPercent = 100 * float64(r.Loss.NACKedSeqs) / float64(r.Loss.Expected)
		r.Loss.RawGapPercent = 100 * float64(r.Loss.RawGaps) / float64(r.Loss.Expected)
		r.Loss.DuplicatePercent = 100 * float64(r.Loss.Duplicates) / float64(r.Loss.Expected)
	}
	r.Jitter.VideoMean, r.Jitter.VideoMax = meanMax(jv)
	r.Jitter.AudioMean, r.Jitter.AudioMax = meanMax(ja)
	r.Latency = m.latency.percentiles()
}

func meanMax(v []float64) (mean, mx float64) {
	if len(v) == 0 {
		return 0, 0
	}
	for _, x := range v {
		mean += x
	}
	return mean / float64(len(v)), slices.Max(v)
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, report any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// WriteTable writes the media report for people.
func (r *MediaReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(format, args...)) }
	fmt.Fprintln(tw, "Rostrum load test: media plane")
	row("endpoint", "%s", r.Endpoint)
	if r.ServerDescription != "" {
		row("server", "%s", r.ServerDescription)
	}
	row("generator", "%s", r.Generator)
	l := r.Load
	load := fmt.Sprintf("%d stage(s) × %d publisher(s) × %d subscriber(s) = %d subscriptions", l.Stages, l.PublishersPerStage, l.SubscribersPerStage, l.Subscriptions)
	row("load", "%s", load)
	media := "no video"
	if l.Codec != "" {
		size := fmt.Sprintf(" %d×%d", l.Width, l.Height)
		if l.Width == 0 {
			size = "" // a video file that does not say (H.264 Annex-B)
		}
		media = fmt.Sprintf("%s %s%s %d fps", strings.ToUpper(l.Codec), bitrate(float64(l.VideoBitrate)), size, l.FPS)
		if l.Simulcast {
			media += " simulcast (hi, mid, low)"
		}
		if l.VideoFile != "" {
			media += " from " + l.VideoFile + " (looped)"
		}
	}
	if l.Audio {
		media += " + Opus audio"
	}
	if l.Events {
		media += "; events websocket per participant"
	}
	row("media", "%s", media)
	if l.Codec != "" {
		row("video pacing", "%s", l.Pacing)
	}
	row("window", "%.1f s measured after %.0f s warm-up (joins at %g/s)", r.WindowSec, l.WarmupSec, l.JoinRate)
	fmt.Fprintln(tw)
	row("streams forwarded", "%d (%d video, %d audio)", r.StreamsForwarded, r.VideoStreams, r.AudioStreams)
	j := r.Joins
	row("joins", "%d ok, %d failed, %d without media", j.OK, j.Failed, j.NoMedia)
	row("join → connected", "%s", pct(j.Connect))
	row("join → first frame", "%s", pct(j.ToFirstFrame))
	row("connected → first frame", "%s", pct(j.ConnectedToFirstFrame))
	if r.VideoStreams > 0 {
		row("per subscriber, video", "%s packets/s, %s (least: %s)", thousands(r.Video.PacketsPerSecond), bitrate(r.Video.BitsPerSecond), bitrate(r.Video.MinBitsPerSecond))
	}
	if r.AudioStreams > 0 {
		row("per subscriber, audio", "%s packets/s, %s", thousands(r.Audio.PacketsPerSecond), bitrate(r.Audio.BitsPerSecond))
	}
	row("received, all", "%s packets/s, %s", thousands(r.Total.PacketsPerSecond), bitrate(r.Total.BitsPerSecond))
	row("loss", "video %.3f %%, audio %.3f %% (%s of %s packets; worst subscription %.2f %%); %s seqs NACKed (%.3f %%); %s duplicates received (%.3f %%)",
		r.Loss.VideoPercent, r.Loss.AudioPercent, thousands(float64(r.Loss.Lost)), thousands(float64(r.Loss.Expected)), r.Loss.WorstPercent,
		thousands(float64(r.Loss.NACKedSeqs)), r.Loss.NACKedPercent, thousands(float64(r.Loss.Duplicates)), r.Loss.DuplicatePercent)
	row("raw gaps", "%s packets (%.3f %%) did not arrive the first time; %s came later (repaired or reordered)",
		thousands(float64(r.Loss.RawGaps)), r.Loss.RawGapPercent, thousands(float64(r.Loss.Repaired)))
	if u := r.UDPDrops; u.Measured {
		row("UDP drops (machine-wide)", "%d receive buffer overflows (RcvbufErrors), %d in errors in all (InErrors)", u.RcvbufErrors, u.InErrors)
		if u.ServerMeasured {
			row("UDP drops, server's sockets", "%d", u.ServerSocketDrops)
		}
	} else {
		row("UDP drops (machine-wide)", "not measured (no /proc/net/snmp)")
	}
	writeDelivery(row, r.Delivery)
	row("jitter", "video %.2f ms (max %.2f), audio %.2f ms (max %.2f)", r.Jitter.VideoMean, r.Jitter.VideoMax, r.Jitter.AudioMean, r.Jitter.AudioMax)
	row("latency, send → receive", "%s", pct(r.Latency))
	if f := r.ForwardDelay; f.Measured {
		row("server's share (forward delay)", "p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms over %s packets (read → last subscriber's send)", f.P50Ms, f.P99Ms, f.P999Ms, thousands(float64(f.Packets)))
	}
	if s := r.Server; s.Measured {
		row("server CPU", "%.2f cores; %.1f µs per packet received → %s packets/s per core", s.Cores, s.CPUPerPacketMicros, thousands(s.PacketsPerSecondPerCore))
		row("server memory", "RSS %s (%s with publishers only, %s per subscription; peak %s), %d threads",
			mib(s.RSSBytes), mib(s.RSSWithPublishersOnlyBytes), kb(s.MemoryPerSubscriptionBytes), mib(s.PeakRSSBytes), s.Threads)
	} else {
		row("server CPU, memory", "not measured (give --server-pid, or let loadtest start the server)")
	}
	row("generator CPU", "%.2f cores", r.GeneratorCores)
	if r.MachineCores > 0 {
		row("machine CPU", "%.2f cores busy, %.2f of them other processes'", r.MachineCores, r.OtherCores)
	}
	if r.Errors.Count == 0 {
		row("errors", "none")
	} else {
		row("errors", "%d", r.Errors.Count)
		for _, k := range r.Errors.Kinds {
			row("", "%s", k)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeSeries(w, r.Series, r.SeriesIntervalSec)
}

// writeDelivery writes the rows of the delivery figures.
func writeDelivery(row func(k, format string, args ...any), d Delivery) {
	share := func(v float64) string {
		if v < 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f %%", 100*v)
	}
	row("received of sent", "video %s, audio %s (%s of %s packets; worst stream %s)", share(d.VideoShare), share(d.AudioShare),
		thousands(float64(d.Received)), thousands(float64(d.Expected)), share(d.WorstShare))
	row("", "expected: %s", d.ExpectedBasis)
	if d.Stalls == 0 {
		row("stalls (silent > 1 s)", "none")
		return
	}
	row("stalls (silent > 1 s)", "%d on %d stream(s): %.1f s in all, longest %.1f s; %d stream(s) stopped, %d starved",
		d.Stalls, d.StalledStreams, d.StalledSec, d.LongestStallSec, d.StoppedStreams, d.StarvedStreams)
	shown := 0
	for _, s := range d.Streams {
		if len(s.Stalls) == 0 && !s.Starved {
			continue
		}
		if shown == 5 {
			row("", "… (all streams in the JSON report)")
			break
		}
		shown++
		var parts []string
		for i, st := range s.Stalls {
			if i == 3 {
				parts = append(parts, fmt.Sprintf("+%d more", len(s.Stalls)-3))
				break
			}
			to := fmt.Sprintf("%.1f", st.ToSec)
			if st.Open {
				to = "end"
			}
			parts = append(parts, fmt.Sprintf("%.1f–%s s", st.FromSec, to))
		}
		row("", "stage %d subscriber %d ← publisher %d %s: received %s of sent; silent %s",
			s.Stage, s.Subscriber, s.Publisher, s.Kind, share(s.Share), strings.Join(parts, ", "))
	}
}

// writeSeries writes the time series as a table, at most 40 rows: longer
// series are merged into fewer, longer intervals (the JSON has them all).
func writeSeries(w io.Writer, series []SeriesPoint, interval float64) error {
	if len(series) == 0 {
		return nil
	}
	step := (len(series) + 39) / 40
	fmt.Fprintf(w, "\n  over time (every %.0f s):\n", interval*float64(step))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  t s\tvideo pkt/s per sub\taudio pkt/s per sub\tleast per sub\treceived of sent\tstalled streams\tserver RSS\tserver cores\t")
	for i := 0; i < len(series); i += step {
		m := mergePoints(series[i:min(i+step, len(series))])
		share, rss, cpu := "n/a", "-", "-"
		if m.ReceivedShare >= 0 {
			share = fmt.Sprintf("%.2f %%", 100*m.ReceivedShare)
		}
		if m.ServerRSSBytes > 0 {
			rss, cpu = mib(m.ServerRSSBytes), fmt.Sprintf("%.2f", m.ServerCores)
		}
		fmt.Fprintf(tw, "  %.0f\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t\n", m.AtSec, thousands(m.VideoPacketsPerSecond), thousands(m.AudioPacketsPerSecond),
			thousands(m.MinPacketsPerSecond), share, m.StalledStreams, rss, cpu)
	}
	return tw.Flush()
}

// mergePoints merges consecutive points of equal length into one: means of
// rates, the least of minima, the most stalled streams, the last RSS.
func mergePoints(ps []SeriesPoint) SeriesPoint {
	if len(ps) == 1 {
		return ps[0]
	}
	out := SeriesPoint{AtSec: ps[len(ps)-1].AtSec, MinPacketsPerSecond: ps[0].MinPacketsPerSecond, ServerRSSBytes: ps[len(ps)-1].ServerRSSBytes}
	var share float64
	shares := 0
	for _, p := range ps {
		n := float64(len(ps))
		out.VideoPacketsPerSecond += p.VideoPacketsPerSecond / n
		out.AudioPacketsPerSecond += p.AudioPacketsPerSecond / n
		out.SentVideoPacketsPerSecond += p.SentVideoPacketsPerSecond / n
		out.SentAudioPacketsPerSecond += p.SentAudioPacketsPerSecond / n
		out.ServerCores += p.ServerCores / n
		out.MinPacketsPerSecond = min(out.MinPacketsPerSecond, p.MinPacketsPerSecond)
		out.StalledStreams = max(out.StalledStreams, p.StalledStreams)
		if p.ReceivedShare >= 0 {
			share += p.ReceivedShare
			shares++
		}
	}
	out.ReceivedShare = -1
	if shares > 0 {
		out.ReceivedShare = share / float64(shares)
	}
	return out
}

// WriteTable writes the API report for people.
func (r *APIReport) WriteTable(w io.Writer) error {
	fmt.Fprintln(w, "Rostrum load test: control plane (SigV4-signed aws-sdk-go-v2 calls)")
	fmt.Fprintf(w, "  endpoint   %s\n", r.Endpoint)
	if r.Server != "" {
		fmt.Fprintf(w, "  server     %s\n", r.Server)
	}
	fmt.Fprintf(w, "  generator  %s\n", r.Generator)
	fmt.Fprintf(w, "  load       %d concurrent calls, %.0f s per operation\n\n", r.Concurrency, r.DurationSec)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\trequests/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\terrors\tserver cores\treq/s per server core\tgenerator cores\tother processes\t")
	for _, o := range r.Operations {
		srv, per := "-", "-"
		if o.ServerCores > 0 {
			srv, per = fmt.Sprintf("%.2f", o.ServerCores), thousands(o.PerServerCore)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.2f\t%.1f\t%d\t%s\t%s\t%.2f\t%.2f\t\n", o.Operation, thousands(o.PerSecond),
			o.Latency.P50, o.Latency.P95, o.Latency.P99, o.Latency.Max, o.Errors, srv, per, o.GeneratorCores, o.OtherCores)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, o := range r.Operations {
		for _, k := range o.ErrorKinds {
			fmt.Fprintf(w, "  %s error: %s\n", o.Operation, k)
		}
	}
	return nil
}

func pct(p Percentiles) string {
	if p.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s ms  (%s samples)", msf(p.P50), msf(p.P95), msf(p.P99), msf(p.Max), thousands(float64(p.Count)))
}

func msf(v float64) string {
	switch {
	case v < 1:
		return strconv.FormatFloat(v, 'f', 3, 64)
	case v < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 0, 64)
}

// thousands formats v rounded, with thin separators: 12,345.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func bitrate(bps float64) string {
	switch {
	case bps >= 1e9:
		return fmt.Sprintf("%.2f Gbit/s", bps/1e9)
	case bps >= 1e6:
		return fmt.Sprintf("%.2f Mbit/s", bps/1e6)
	}
	return fmt.Sprintf("%.0f kbit/s", bps/1e3)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kb(b int64) string  { return fmt.Sprintf("%.0f KiB", float64(b)/1024) }
