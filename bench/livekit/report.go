package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is one measurement. Its JSON names are those of `rostrum loadtest
// --json` for the same figures, so that `livekit-bench table` reads both
// (Mode tells them apart: "media" for Rostrum, "livekit" here).
type report struct {
	Mode              string     `json:"mode"`
	ServerDescription string     `json:"serverDescription"`
	Generator         string     `json:"generator"`
	Load              load       `json:"load"`
	Joins             joins      `json:"joins"`
	Video             rates      `json:"perSubscriberVideo"`
	Total             rates      `json:"total"`
	Loss              loss       `json:"loss"`
	Delivery          delivery   `json:"delivery"`
	UDPDrops          udpDrops   `json:"udpDrops"`
	Server            server     `json:"serverStats"`
	GeneratorCores    float64    `json:"generatorCores"`
	MachineCores      float64    `json:"machineBusyCores"`
	OtherCores        float64    `json:"otherProcessesCores"`
	Errors            errorStats `json:"errors"`
	WindowSec         float64    `json:"windowSeconds"`
}

type load struct {
	Stages              int     `json:"stages"`
	PublishersPerStage  int     `json:"publishersPerStage"`
	SubscribersPerStage int     `json:"subscribersPerStage"`
	Subscriptions       int     `json:"subscriptions"`
	VideoFile           string  `json:"videoFile,omitempty"`
	Codec               string  `json:"codec,omitempty"`
	VideoBitrate        int     `json:"videoBitrate,omitempty"`
	Width               int     `json:"width,omitempty"`
	Height              int     `json:"height,omitempty"`
	FPS                 int     `json:"fps,omitempty"`
	Audio               bool    `json:"audio"`
	DurationSec         float64 `json:"durationSeconds"`
	WarmupSec           float64 `json:"warmupSeconds"`
	JoinRate            float64 `json:"joinRate"`
}

type joins struct {
	Attempted     int         `json:"attempted"`
	OK            int         `json:"ok"`
	Failed        int         `json:"failed"`
	NoMedia       int         `json:"noMedia"`
	ToFirstPacket percentiles `json:"toFirstFrame"`
}

type rates struct {
	PacketsPerSecond float64 `json:"packetsPerSecond"`
	BitsPerSecond    float64 `json:"bitsPerSecond"`
}

// loss: RawGaps are the sequence numbers that were skipped when a higher
// one arrived, each once (they did not come the first time: NACK repairs
// them), as rostrum loadtest counts them; RawGapPercent is their share of
// Expected. Repaired are the packets that came after a higher one.
type loss struct {
	Expected         int64   `json:"expected"`
	RawGaps          int64   `json:"rawGaps"`
	RawGapPercent    float64 `json:"rawGapPercent"`
	Repaired         int64   `json:"repaired"`
	Duplicates       int64   `json:"duplicates"`
	DuplicatePercent float64 `json:"duplicatePercent"`
	PaddingPackets   int64   `json:"paddingPackets"`
}

type delivery struct {
	ExpectedBasis string  `json:"expectedBasis"`
	VideoShare    float64 `json:"videoReceivedShare"`
	WorstShare    float64 `json:"worstStreamShare"`
	Expected      int64   `json:"expectedPackets"`
	Received      int64   `json:"receivedPackets"`
}

type udpDrops struct {
	Measured     bool  `json:"measured"`
	InErrors     int64 `json:"inErrors"`
	RcvbufErrors int64 `json:"rcvbufErrors"`
}

type server struct {
	Measured                   bool    `json:"measured"`
	Cores                      float64 `json:"cores"`
	CPUPerPacketMicros         float64 `json:"cpuPerPacketMicros"`
	PacketsPerSecondPerCore    float64 `json:"packetsPerSecondPerCore"`
	RSSBytes                   int64   `json:"rssBytes"`
	PeakRSSBytes               int64   `json:"peakRssBytes"`
	RSSWithPublishersOnlyBytes int64   `json:"rssWithPublishersOnlyBytes"`
	MemoryPerSubscriptionBytes int64   `json:"memoryPerSubscriptionBytes"`
}

type errorStats struct {
	Count int      `json:"count"`
	Kinds []string `json:"kinds,omitempty"`
}

type percentiles struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
}

func percentilesOf(d []time.Duration) percentiles {
	if len(d) == 0 {
		return percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return float64(s[max(0, min(i, len(s)-1))]) / 1e6
	}
	return percentiles{Count: uint64(len(s)), P50: at(0.5), P99: at(0.99), Max: at(1)}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kib(b int64) string { return fmt.Sprintf("%.0f KiB", float64(b)/1024) }

func thousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
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

func share(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f %%", 100*v)
}

// writeTable writes the report in the rows of rostrum loadtest's table.
func (r *report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, f string, a ...any) { fmt.Fprintf(tw, "  %s\t%s\n", k, fmt.Sprintf(f, a...)) }
	fmt.Fprintln(tw, "LiveKit load test: one VP8 publisher, N subscribers")
	row("server", "%s", r.ServerDescription)
	row("generator", "%s", r.Generator)
	l := r.Load
	row("load", "1 room × 1 publisher × %d subscribers", l.SubscribersPerStage)
	row("media", "VP8 %.2f Mbit/s %d×%d %d fps from %s (looped), no audio", float64(l.VideoBitrate)/1e6, l.Width, l.Height, l.FPS, l.VideoFile)
	row("window", "%.1f s measured after %.0f s warm-up (joins at %g/s)", r.WindowSec, l.WarmupSec, l.JoinRate)
	fmt.Fprintln(tw)
	j := r.Joins
	row("joins", "%d ok, %d failed, %d without media", j.OK, j.Failed, j.NoMedia)
	row("join → first packet", "p50 %.0f  p99 %.0f  max %.0f ms  (%d samples)", j.ToFirstPacket.P50, j.ToFirstPacket.P99, j.ToFirstPacket.Max, j.ToFirstPacket.Count)
	row("per subscriber, video", "%s packets/s, %.2f Mbit/s", thousands(r.Video.PacketsPerSecond), r.Video.BitsPerSecond/1e6)
	row("received, all", "%s packets/s, %.2f Mbit/s", thousands(r.Total.PacketsPerSecond), r.Total.BitsPerSecond/1e6)
	row("raw gaps", "%s of %s packets (%.3f %%) did not come the first time; %s came later; %s duplicates (%.3f %%); %s padding packets",
		thousands(float64(r.Loss.RawGaps)), thousands(float64(r.Loss.Expected)), r.Loss.RawGapPercent, thousands(float64(r.Loss.Repaired)),
		thousands(float64(r.Loss.Duplicates)), r.Loss.DuplicatePercent, thousands(float64(r.Loss.PaddingPackets)))
	if u := r.UDPDrops; u.Measured {
		row("UDP drops (machine-wide)", "%d receive buffer overflows (RcvbufErrors), %d in errors in all (InErrors)", u.RcvbufErrors, u.InErrors)
	}
	d := r.Delivery
	row("received of sent", "video %s (%s of %s packets; worst stream %s)", share(d.VideoShare), thousands(float64(d.Received)), thousands(float64(d.Expected)), share(d.WorstShare))
	if s := r.Server; s.Measured {
		row("server CPU", "%.2f cores; %.1f µs per packet received → %s packets/s per core", s.Cores, s.CPUPerPacketMicros, thousands(s.PacketsPerSecondPerCore))
		row("server memory", "RSS %s (%s with the publisher only, %s per subscriber; peak %s)", mib(s.RSSBytes), mib(s.RSSWithPublishersOnlyBytes), kib(s.MemoryPerSubscriptionBytes), mib(s.PeakRSSBytes))
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
	_ = tw.Flush()
}

// tableMain prints JSON reports of rostrum loadtest and livekit-bench side
// by side, one line per run, by subscribers, and the ratios at each count.
func tableMain(files []string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		fmt.Fprintln(stderr, "usage: livekit-bench table RUN.json...")
		return 2
	}
	type run struct {
		file string
		r    report
	}
	var runs []run
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(stderr, "livekit-bench table:", err)
			return 1
		}
		var r report
		if err := json.Unmarshal(b, &r); err != nil {
			fmt.Fprintf(stderr, "livekit-bench table: %s: %v\n", f, err)
			return 1
		}
		runs = append(runs, run{f, r})
	}
	name := func(r report) string {
		if r.Mode == "livekit" {
			return "LiveKit"
		}
		return "Rostrum"
	}
	subs := func(r report) int { return r.Load.SubscribersPerStage * r.Load.Stages * r.Load.PublishersPerStage }
	slices.SortStableFunc(runs, func(a, b run) int {
		if d := subs(a.r) - subs(b.r); d != 0 {
			return d
		}
		return strings.Compare(name(b.r), name(a.r)) // Rostrum first
	})
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\tserver\tpkt/s per core\tserver cores\tRSS per subscriber\traw gaps\treceived of sent\tRcvbufErrors\tgenerator cores\tothers' cores\terrors\t")
	for _, x := range runs {
		r := x.r
		fmt.Fprintf(tw, "%d\t%s\t%s\t%.2f\t%s\t%.3f %%\t%s\t%d\t%.2f\t%.2f\t%d\t\n", subs(r), name(r), thousands(r.Server.PacketsPerSecondPerCore), r.Server.Cores,
			kib(r.Server.MemoryPerSubscriptionBytes), r.Loss.RawGapPercent, share(r.Delivery.VideoShare), r.UDPDrops.RcvbufErrors, r.GeneratorCores, r.OtherCores, r.Errors.Count)
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	// Ratios at each N, over the means of the runs there.
	type acc struct {
		pps, mem [2]float64
		n        [2]int
	}
	byN := map[int]*acc{}
	var ns []int
	for _, x := range runs {
		n := subs(x.r)
		a := byN[n]
		if a == nil {
			a = &acc{}
			byN[n] = a
			ns = append(ns, n)
		}
		i := 0
		if x.r.Mode == "livekit" {
			i = 1
		}
		a.pps[i] += x.r.Server.PacketsPerSecondPerCore
		a.mem[i] += float64(x.r.Server.MemoryPerSubscriptionBytes)
		a.n[i]++
	}
	fmt.Fprintln(stdout)
	for _, n := range ns {
		a := byN[n]
		if a.n[0] == 0 || a.n[1] == 0 || a.pps[1] == 0 || a.mem[0] <= 0 {
			continue
		}
		pr, pl := a.pps[0]/float64(a.n[0]), a.pps[1]/float64(a.n[1])
		mr, ml := a.mem[0]/float64(a.n[0]), a.mem[1]/float64(a.n[1])
		fmt.Fprintf(stdout, "N=%d: Rostrum forwards %.2f× LiveKit's packets per core, with %.1f× less memory per subscriber\n", n, pr/pl, ml/mr)
	}
	return 0
}
