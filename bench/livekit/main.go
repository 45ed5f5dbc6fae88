// Command livekit-bench drives LiveKit the way `rostrum loadtest
// --video-file` drives Rostrum, so that the two can be compared on one
// machine: it starts a livekit-server pinned to a CPU, publishes one VP8
// IVF file from one publisher (the same packetization and pacing as
// Rostrum's load generator), subscribes N subscribers at a join rate, waits
// a warm-up and measures: packets received per subscriber, the share of
// what was sent, raw gaps (sequence numbers that did not come the first
// time), the server's CPU time → forwarded packets per second per core, its
// memory per subscriber, and the machine's UDP receive-buffer drops.
//
// It lives in its own Go module so that Rostrum does not depend on
// LiveKit's SDK. See bench/README.md.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

const usage = `Usage:
  livekit-bench [flags]                      measure LiveKit with one VP8 publisher and N subscribers
  livekit-bench table RUN.json...            print rostrum loadtest and livekit-bench JSON reports side by side

Example:
  livekit-bench --server /opt/livekit/server --server-cpus 0 --cpus 1 \
      --video-file video.ivf --subscribers 200 --json livekit-200.json

Flags:
`

func main() {
	if len(os.Args) > 1 && os.Args[1] == "table" {
		os.Exit(tableMain(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	server      string
	serverCPUs  string
	cpus        string
	serverLog   string
	videoFile   string
	subscribers int
	joinRate    float64
	warmup      time.Duration
	duration    time.Duration
	jsonOut     string
	quiet       bool
	verbose     bool
	singlePC    bool
}

// pinnedEnv marks the process re-executed under taskset for --cpus.
const pinnedEnv = "LIVEKIT_BENCH_PINNED"

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("livekit-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	var o options
	defServer := os.Getenv("LIVEKIT_SERVER")
	if defServer == "" {
		defServer = "livekit-server"
	}
	fs.StringVar(&o.server, "server", defServer, "the livekit-server binary (default $LIVEKIT_SERVER, else livekit-server in PATH)")
	fs.StringVar(&o.serverCPUs, "server-cpus", "", "CPUs to pin the server to, as taskset -c takes them (e.g. 0); sets its GOMAXPROCS")
	fs.StringVar(&o.cpus, "cpus", "", "CPUs to pin this driver to (e.g. 1): it runs itself again under taskset")
	fs.StringVar(&o.serverLog, "server-log", "", "append the server's output to this file (default: discard)")
	fs.StringVar(&o.videoFile, "video-file", "", "the VP8 IVF file the publisher loops (required; the same as rostrum loadtest's --video-file)")
	fs.IntVar(&o.subscribers, "subscribers", 10, "subscribers")
	fs.Float64Var(&o.joinRate, "join-rate", 20, "subscribers joining per second")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "time between the last join and the measurement")
	fs.DurationVar(&o.duration, "duration", 15*time.Second, "measured time")
	fs.StringVar(&o.jsonOut, "json", "", "write the report as JSON to this file (- for standard output, instead of the table)")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on standard error")
	fs.BoolVar(&o.singlePC, "single-peer-connection", false, "subscribers use one peer connection (the SDK's single-PC mode) instead of the default two, a publishing one that stays idle and a subscribing one")
	fs.BoolVar(&o.verbose, "verbose", false, "let the LiveKit SDK (and pion under it) log to standard error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "livekit-bench:", err)
		return 1
	}
	switch {
	case fs.NArg() > 0:
		return fail(fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	case o.videoFile == "":
		return fail(errors.New("--video-file is required (a VP8 IVF file; see bench/README.md)"))
	case o.subscribers < 1 || o.joinRate <= 0 || o.duration <= 0 || o.warmup < 0:
		return fail(errors.New("--subscribers, --join-rate and --duration must be positive"))
	}
	if o.cpus != "" && os.Getenv(pinnedEnv) == "" {
		if _, err := countCPUs(o.cpus); err != nil {
			return fail(err)
		}
		// Go sizes GOMAXPROCS from the affinity it starts with.
		self, err := os.Executable()
		if err != nil {
			return fail(err)
		}
		cmd := exec.Command("taskset", append([]string{"-c", o.cpus, self}, args...)...)
		cmd.Env = append(os.Environ(), pinnedEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, stderr
		signal.Ignore(os.Interrupt, syscall.SIGTERM) // the child gets them too and cleans up
		if err := cmd.Run(); err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode()
			}
			return fail(err)
		}
		return 0
	}
	progress := func(s string) {
		if !o.quiet {
			fmt.Fprintf(stderr, "%s  %s\n", time.Now().Format("15:04:05"), s)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := measure(ctx, o, progress)
	if rep == nil {
		return fail(err)
	}
	if o.jsonOut != "-" {
		rep.writeTable(stdout)
	}
	if o.jsonOut != "" {
		var w io.Writer = stdout
		if o.jsonOut != "-" {
			f, ferr := os.Create(o.jsonOut)
			if ferr != nil {
				return fail(ferr)
			}
			defer f.Close()
			w = f
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if werr := enc.Encode(rep); werr != nil {
			return fail(werr)
		}
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

func generatorDescription() string {
	return fmt.Sprintf("GOMAXPROCS %d, %s", runtime.GOMAXPROCS(0), strings.TrimSpace(runtime.Version()))
}
