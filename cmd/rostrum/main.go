// Command rostrum is a self-hostable server that does what Amazon IVS
// Real-Time does, on the same API.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/loadtest"
	"github.com/rostrum-dev/rostrum/internal/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "loadtest":
		return loadtest.Main(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintln(stdout, "rostrum", buildVersion())
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "rostrum: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprint(w, `Usage: rostrum <command> [flags]

Commands:
  serve     run the server (rostrum serve --help lists its flags)
  loadtest  put a server under media or API load and report what it sustains
            (rostrum loadtest --help)
  version   print the version
`)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

func serve(args []string, stdout, stderr io.Writer) int {
	cfg, err := config.Parse(args, os.Getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "rostrum serve:", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	log.Debug("garbage collector", "gogc", server.ApplyGCDefault())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := server.Start(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	udp, tcp := srv.MediaAddrs()
	media := []any{"media_udp", udp.String()}
	if tcp != nil {
		media = append(media, "media_tcp", tcp.String())
	}
	if a := srv.Ingest.RTMPAddr(); a != nil {
		media = append(media, "rtmp", a.String())
	}
	if a := srv.Ingest.RTMPSAddr(); a != nil {
		media = append(media, "rtmps", a.String())
	}
	log.Info("rostrum serving", append([]any{"version", buildVersion(), "addr", srv.Addr().String(), "url", srv.BaseURL},
		append(media, "region", cfg.Region, "account", cfg.AccountID, "data_dir", cfg.DataDir, "node", srv.Service.NodeID())...)...)
	if err := writePIDFile(cfg.HTTP.PIDFile); err != nil {
		log.Error("--pid-file", "err", err)
	} else if cfg.HTTP.PIDFile != "" {
		defer os.Remove(cfg.HTTP.PIDFile)
	}
	if cfg.AccessKeyID == config.DevAccessKeyID {
		fmt.Fprintf(stdout, "\nDevelopment credentials (set --access-key-id/--secret-access-key for anything else):\n"+
			"  export AWS_ACCESS_KEY_ID=%s\n  export AWS_SECRET_ACCESS_KEY=%s\n  export AWS_DEFAULT_REGION=%s\n"+
			"  aws ivs-realtime --endpoint-url %s list-stages\n\n",
			cfg.AccessKeyID, cfg.SecretAccessKey, cfg.Region, srv.BaseURL)
	}
	select {
	case <-ctx.Done():
	case err := <-srv.Done():
		log.Error("server stopped", "err", err)
		return 1
	}
	if d := cfg.Cluster.DrainTimeout; d > 0 {
		// Other nodes take the new sessions while this one's end.
		log.Info("draining before shutting down", "drain_timeout", d)
		dctx, dcancel := context.WithTimeout(context.Background(), d)
		if err := srv.Drain(dctx); err != nil {
			log.Warn("stage sessions still running at the end of --drain-timeout; their participants reconnect to other nodes", "err", err)
		}
		dcancel()
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}

// writePIDFile writes this process's id to path, if set.
func writePIDFile(path string) error {
	if path == "" {
		return nil
	}
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
