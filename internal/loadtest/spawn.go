package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SpawnOptions configure a server started for a load test.
type SpawnOptions struct {
	// Command is the program and the arguments before serve's flags:
	// default {os.Executable(), "serve"} (this rostrum binary).
	Command []string
	// CPUs, if set, pins the server to these CPUs (sched_setaffinity) and
	// sets its GOMAXPROCS to their number.
	CPUs []int
	// ExtraArgs are added to serve's flags (e.g. "--max-subscribers", "50000").
	ExtraArgs []string
	// Stderr receives the server's log (warnings and errors); nil discards it.
	Stderr io.Writer
}

// Spawned is a server process started by Spawn.
type Spawned struct {
	Endpoint string // http://127.0.0.1:<port>
	PID      int
	CPUs     []int
	cmd      *exec.Cmd
	dir      string
	exited   chan struct{}
}

// Spawn starts `rostrum serve` on loopback, in a temporary data directory,
// with its media on one free UDP port and no TCP, and waits until /readyz
// answers. Stop ends it.
func Spawn(ctx context.Context, opts SpawnOptions) (*Spawned, error) {
	command := opts.Command
	if len(command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("loadtest: finding the rostrum binary: %w", err)
		}
		command = []string{exe, "serve"}
	}
	dir, err := os.MkdirTemp("", "rostrum-loadtest-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	args := append(append([]string(nil), command[1:]...),
		"--listen", listen, "--data-dir", dir,
		"--rtc-udp-port", "0", "--rtc-tcp-port", "-1", "--rtc-listen-ip", "127.0.0.1",
		"--log-level", "warn", "--session-grace", "1s", "--quota-stages", "0",
		// No RTMP ingest: its default ports (1935, 1936) would collide
		// with any other server on the machine, another load test's too.
		"--rtmp-listen", "off", "--rtmps-listen", "off")
	args = append(args, opts.ExtraArgs...)
	cmd := exec.Command(command[0], args...)
	cmd.Stdout = io.Discard
	cmd.Stderr = opts.Stderr
	if cmd.Stderr == nil {
		cmd.Stderr = io.Discard
	}
	cmd.Env = os.Environ()
	if len(opts.CPUs) > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(len(opts.CPUs)))
	}
	// Linux keeps CPU affinity per thread and a child inherits its forking
	// thread's: pin this thread, start the child from it, and unpin.
	if err := startPinned(cmd, opts.CPUs); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("loadtest: starting the server: %w", err)
	}
	s := &Spawned{Endpoint: "http://" + listen, PID: cmd.Process.Pid, CPUs: opts.CPUs, cmd: cmd, dir: dir, exited: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx, 30*time.Second); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

func startPinned(cmd *exec.Cmd, cpus []int) error {
	if len(cpus) == 0 {
		return cmd.Start()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := getAffinity(0)
	if err != nil {
		return err
	}
	if err := setAffinity(0, maskOf(cpus)); err != nil {
		return err
	}
	err = cmd.Start()
	if rerr := setAffinity(0, old); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Spawned) waitReady(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Endpoint+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return errors.New("loadtest: the server exited at start (run `rostrum serve` to see why)")
		case <-ctx.Done():
			return fmt.Errorf("loadtest: the server did not become ready: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the server (SIGTERM, then SIGKILL after 10 s) and removes its
// data directory.
func (s *Spawned) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	_ = os.RemoveAll(s.dir)
}

// String describes the server for the report.
func (s *Spawned) String() string {
	b := fmt.Sprintf("spawned `rostrum serve`, pid %d", s.PID)
	if len(s.CPUs) > 0 {
		b += fmt.Sprintf(", pinned to CPU %s (GOMAXPROCS %d)", cpuListString(s.CPUs), len(s.CPUs))
	}
	return b
}

func cpuListString(cpus []int) string {
	parts := make([]string, len(cpus))
	for i, c := range cpus {
		parts[i] = strconv.Itoa(c)
	}
	return strings.Join(parts, ",")
}
