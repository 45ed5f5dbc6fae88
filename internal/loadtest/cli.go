package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Development credentials of `rostrum serve` (internal/config), the
// defaults here so that a load test of a development server needs no flags.
const (
	devAccessKeyID     = "AKIAROSTRUMDEV000001"
	devSecretAccessKey = "rostrum-dev-secret-access-key-do-not-use-in-production"
)

// Usage is the help of `rostrum loadtest`.
const Usage = `Usage:
  rostrum loadtest [media] [flags]   media plane: stages × publishers × subscribers over WebRTC
  rostrum loadtest api [flags]       control plane: concurrent SigV4-signed API calls

Without --endpoint, the load test starts its own server (this binary's
"serve", on loopback, in a temporary directory) and measures its CPU and
memory; --server-cpus pins it, --cpus pins the load generator. Every run
stops by itself and deletes the stages it made. Load goes only to --endpoint.
A media run whose report counts errors (a stream that stopped or received
less than half of what was sent, a failed join) exits with status 3.

Examples:
  rostrum loadtest --subscribers 100 --duration 30s
  rostrum loadtest --server-cpus 0 --cpus 1 --subscribers 300 --json report.json
  rostrum loadtest --video-file auto --video-bitrate 1.4M --keyframe-interval 1s --no-audio \
      --server-cpus 0 --cpus 1 --subscribers 200
  rostrum loadtest --endpoint http://127.0.0.1:8080 --server-pid "$(cat rostrum.pid)" \
      --stages 4 --publishers 2 --subscribers 25 --simulcast
  rostrum loadtest api --server-cpus 0 --cpus 1 --concurrency 32

Flags:
`

type commonFlags struct {
	endpoint, region, accessKey, secret string
	serverPID                           int
	serverCPUs, cpus                    string
	serverArgs, serverLog               string
	jsonOut, cpuProfile                 string
	quiet                               bool
}

func (c *commonFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.endpoint, "endpoint", "", "base URL of the server's API, e.g. http://127.0.0.1:8080 (default: start a server)")
	fs.StringVar(&c.region, "region", "us-east-1", "region for SigV4")
	fs.StringVar(&c.accessKey, "access-key-id", devAccessKeyID, "access key id for SigV4 (rostrum serve's development one)")
	fs.StringVar(&c.secret, "secret-access-key", devSecretAccessKey, "secret access key")
	fs.IntVar(&c.serverPID, "server-pid", 0, "pid of the server under --endpoint on this machine: its CPU and memory are read from /proc")
	fs.StringVar(&c.serverCPUs, "server-cpus", "", "CPUs to pin the started server to, as taskset -c takes them (e.g. 0); sets its GOMAXPROCS")
	fs.StringVar(&c.cpus, "cpus", "", "CPUs to pin the load generator to (e.g. 1); sets its GOMAXPROCS")
	fs.StringVar(&c.serverArgs, "server-args", "", "extra flags for the started server, space-separated")
	fs.StringVar(&c.serverLog, "server-log", "", "append the started server's log (warnings and errors) to this file (- for standard error; default: discard)")
	fs.StringVar(&c.jsonOut, "json", "", "write the report as JSON to this file (- for standard output, instead of the table)")
	fs.BoolVar(&c.quiet, "quiet", false, "no progress lines on standard error")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the load generator (not the server) to this file")
}

// Main runs `rostrum loadtest` with args (after "loadtest") and returns the
// exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	mode := "media"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		mode, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("rostrum loadtest "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), Usage)
		fs.PrintDefaults()
	}
	var c commonFlags
	c.register(fs)
	var (
		mo         MediaOptions
		ao         APIOptions
		resolution string
		bitrate    string
		ops        string
	)
	switch mode {
	case "media":
		fs.IntVar(&mo.Stages, "stages", 1, "stages")
		fs.IntVar(&mo.Publishers, "publishers", 1, "publishers per stage (at most 12)")
		fs.IntVar(&mo.Subscribers, "subscribers", 10, "subscribing participants per stage; each subscribes to every publisher of its stage")
		fs.StringVar(&bitrate, "video-bitrate", "1.5M", "video bitrate in bits per second (k and M suffixes); the top layer's with --simulcast")
		fs.StringVar(&resolution, "resolution", "1280x720", "video size, written into keyframes")
		fs.IntVar(&mo.FPS, "fps", 30, "video frames per second")
		fs.StringVar(&mo.Codec, "codec", "vp8", "video codec: vp8 or h264")
		fs.DurationVar(&mo.KeyframeInterval, "keyframe-interval", 2*time.Second, "time between keyframes")
		fs.BoolVar(&mo.Simulcast, "simulcast", false, "send three layers (hi as given, mid at 1/3 the bitrate and half the size, low at 1/10 and a quarter); subscribers ask for the highest")
		fs.StringVar(&mo.VideoFile, "video-file", "", `loop this file of real video (VP8 in IVF, or H.264 Annex-B) from every publisher instead of synthetic frames; "auto" encodes one with ffmpeg (libvpx) from --resolution, --fps, --video-bitrate and --keyframe-interval`)
		fs.Float64Var(&mo.Pace, "pace", 2.5, "pace the publishers' video as browsers do (libwebrtc's pacer): packets leave at this multiple of the video bitrate; 0 sends each frame's packets back to back")
		fs.DurationVar(&mo.PaceBurst, "pace-burst", 40*time.Millisecond, "with --pace, how much may leave at once, as time at the pacing rate (libwebrtc: 40ms; 0: one packet at a time)")
		fs.BoolVar(&mo.NoAudio, "no-audio", false, "send no audio (default: Opus, 64 kbit/s)")
		fs.BoolVar(&mo.NoVideo, "no-video", false, "send no video")
		fs.DurationVar(&mo.Duration, "duration", 30*time.Second, "measured time, after the warm-up")
		fs.DurationVar(&mo.Warmup, "warmup", 5*time.Second, "time between the last join and the measurement")
		fs.Float64Var(&mo.JoinRate, "join-rate", 20, "subscriptions started per second")
		fs.DurationVar(&mo.JoinTimeout, "join-timeout", 20*time.Second, "time limit of each join")
		fs.BoolVar(&mo.Events, "events", false, "open the stage events websocket for every participant too (as IVS's clients do)")
		fs.DurationVar(&mo.SeriesInterval, "series-interval", 0, "length of one point of the report's time series (default 5s; 1s for a --duration under a minute)")
	case "api":
		fs.StringVar(&ops, "ops", "CreateParticipantToken,GetStage,ListStages", "operations to measure, one after the other: "+strings.Join(APIOperations, ", "))
		fs.IntVar(&ao.Concurrency, "concurrency", 16, "calls in flight")
		fs.DurationVar(&ao.Duration, "duration", 10*time.Second, "measured time per operation")
		fs.DurationVar(&ao.Warmup, "warmup", time.Second, "unmeasured time before each operation")
	case "help":
		fs.Usage()
		return 0
	default:
		fmt.Fprintf(stderr, "rostrum loadtest: unknown mode %q (media or api)\n\n", mode)
		fs.Usage()
		return 2
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rostrum loadtest: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "rostrum loadtest:", err)
		return 1
	}
	if mode == "media" {
		var err error
		if mo.VideoBitrate, err = parseBitrate(bitrate); err != nil {
			return fail(err)
		}
		if mo.Width, mo.Height, err = parseResolution(resolution); err != nil {
			return fail(err)
		}
		if mo.Pace < 0 || mo.PaceBurst < 0 {
			return fail(fmt.Errorf("--pace %g, --pace-burst %s: want a multiple of the video bitrate ≥ 0 (0: unpaced) and a burst ≥ 0", mo.Pace, mo.PaceBurst))
		}
	} else {
		for op := range strings.SplitSeq(ops, ",") {
			if op = strings.TrimSpace(op); op != "" {
				ao.Operations = append(ao.Operations, op)
			}
		}
	}

	progress := func(s string) {
		if !c.quiet {
			fmt.Fprintf(stderr, "%s  %s\n", time.Now().Format("15:04:05"), s)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if c.cpus != "" {
		cpus, err := parseCPUList(c.cpus)
		if err != nil {
			return fail(err)
		}
		if err := PinSelf(cpus); err != nil {
			return fail(err)
		}
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return fail(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	t := Target{Endpoint: strings.TrimRight(c.endpoint, "/"), Region: c.region, AccessKeyID: c.accessKey, SecretAccessKey: c.secret, ServerPID: c.serverPID}
	if t.Endpoint == "" {
		so := SpawnOptions{ExtraArgs: strings.Fields(c.serverArgs)}
		switch c.serverLog {
		case "":
		case "-":
			so.Stderr = stderr
		default:
			f, err := os.OpenFile(c.serverLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return fail(err)
			}
			defer f.Close()
			so.Stderr = f
		}
		if c.serverCPUs != "" {
			cpus, err := parseCPUList(c.serverCPUs)
			if err != nil {
				return fail(err)
			}
			so.CPUs = cpus
		}
		progress("starting rostrum serve")
		srv, err := Spawn(ctx, so)
		if err != nil {
			return fail(err)
		}
		defer srv.Stop()
		t.Endpoint, t.ServerPID, t.ServerDescription = srv.Endpoint, srv.PID, srv.String()
		t.AccessKeyID, t.SecretAccessKey = devAccessKeyID, devSecretAccessKey
	} else {
		if c.serverCPUs != "" {
			return fail(errors.New("--server-cpus pins a server the load test starts; with --endpoint, pin yours with taskset"))
		}
		if t.ServerPID > 0 {
			t.ServerDescription = fmt.Sprintf("pid %d", t.ServerPID)
		}
	}
	mo.LoopbackOnly = isLoopback(t.Endpoint)

	var (
		report interface{ WriteTable(io.Writer) error }
		err    error
		errs   int // errors the report counts: stopped or starved streams, failed joins
	)
	if mode == "media" {
		var r *MediaReport
		r, err = RunMedia(ctx, t, mo, progress)
		if r != nil {
			report, errs = r, r.Errors.Count
		}
	} else {
		var r *APIReport
		r, err = RunAPI(ctx, t, ao, progress)
		if r != nil {
			report = r
		}
	}
	if report == nil {
		return fail(err)
	}
	if c.jsonOut != "-" {
		if werr := report.WriteTable(stdout); werr != nil {
			return fail(werr)
		}
	}
	if c.jsonOut != "" {
		if werr := writeJSONTo(c.jsonOut, stdout, report); werr != nil {
			return fail(werr)
		}
	}
	if err != nil {
		return fail(err)
	}
	if errs > 0 {
		// A run whose streams stopped is not a pass, for scripts either.
		fmt.Fprintf(stderr, "rostrum loadtest: %d errors (see the report)\n", errs)
		return 3
	}
	return 0
}

func writeJSONTo(path string, stdout io.Writer, report any) error {
	if path == "-" {
		return WriteJSON(stdout, report)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteJSON(f, report); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// parseBitrate reads "1500000", "1500k", "1.5M".
func parseBitrate(s string) (int, error) {
	mult := 1.0
	t := strings.TrimSpace(s)
	switch {
	case strings.HasSuffix(t, "k"), strings.HasSuffix(t, "K"):
		mult, t = 1e3, t[:len(t)-1]
	case strings.HasSuffix(t, "M"), strings.HasSuffix(t, "m"):
		mult, t = 1e6, t[:len(t)-1]
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v*mult < 10_000 || v*mult > 100e6 {
		return 0, fmt.Errorf("--video-bitrate %q: want bits per second between 10k and 100M, e.g. 1.5M", s)
	}
	return int(v * mult), nil
}

// parseResolution reads "1280x720".
func parseResolution(s string) (int, int, error) {
	a, b, ok := strings.Cut(strings.ToLower(s), "x")
	w, err1 := strconv.Atoi(a)
	h, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || w < 16 || h < 16 || w > 16383 || h > 16383 {
		return 0, 0, fmt.Errorf("--resolution %q: want WIDTHxHEIGHT, e.g. 1280x720", s)
	}
	return w, h, nil
}
