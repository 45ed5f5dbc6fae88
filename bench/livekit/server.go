package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// liveKit is a livekit-server process this driver started.
type liveKit struct {
	cmd            *exec.Cmd
	dir            string
	url            string // ws://127.0.0.1:port
	key, secret    string
	udpPort        int
	cpus           string
	done           chan struct{}
	waitErr        error
	configFilePath string
}

// freePort asks the kernel for a free loopback port of a network ("tcp" or
// "udp"), to give to the server.
func freePort(network string) (int, error) {
	switch network {
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port, nil
	default:
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// configYAML is a single-node LiveKit server on loopback: signalling on
// port, all media on one UDP port (and an ICE-TCP port nobody uses), its own
// key, warnings only. Not --dev, whose debug logging costs CPU.
func configYAML(port, udpPort, tcpPort int, key, secret string) string {
	return fmt.Sprintf(`# written by rostrum's bench/livekit driver
port: %d
bind_addresses:
  - 127.0.0.1
rtc:
  udp_port: %d
  tcp_port: %d
  use_external_ip: false
  node_ip: 127.0.0.1
  enable_loopback_candidate: true
  allow_tcp_fallback: false
keys:
  %s: %s
logging:
  level: warn
  pion_level: error
`, port, udpPort, tcpPort, key, secret)
}

// startLiveKit writes a config and starts binary on cpus (taskset -c, and
// GOMAXPROCS to match), its log to logTo, and waits until it answers HTTP.
func startLiveKit(ctx context.Context, binary, cpus string, logTo io.Writer) (*liveKit, error) {
	if _, err := exec.LookPath(binary); err != nil {
		return nil, fmt.Errorf("livekit-server binary %q: %w (build it: GOBIN=/some/dir go install github.com/livekit/livekit-server/cmd/server@v1.13.5)", binary, err)
	}
	port, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	tcpPort, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	udpPort, err := freePort("udp")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "livekit-bench-")
	if err != nil {
		return nil, err
	}
	lk := &liveKit{dir: dir, url: fmt.Sprintf("ws://127.0.0.1:%d", port), key: "APIbench" + randomHex(4), secret: randomHex(24),
		udpPort: udpPort, cpus: cpus, done: make(chan struct{})}
	lk.configFilePath = filepath.Join(dir, "livekit.yaml")
	if err := os.WriteFile(lk.configFilePath, []byte(configYAML(port, udpPort, tcpPort, lk.key, lk.secret)), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{binary, "--config", lk.configFilePath}
	env := os.Environ()
	if cpus != "" {
		n, err := countCPUs(cpus)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		// taskset execs the server: the pid is the server's.
		args = append([]string{"taskset", "-c", cpus}, args...)
		env = append(env, "GOMAXPROCS="+strconv.Itoa(n))
	}
	lk.cmd = exec.Command(args[0], args[1:]...)
	lk.cmd.Env = env
	lk.cmd.Stdout, lk.cmd.Stderr = logTo, logTo
	lk.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := lk.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() {
		lk.waitErr = lk.cmd.Wait()
		close(lk.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return lk, nil
			}
		}
		select {
		case <-lk.done:
			lk.stop()
			return nil, fmt.Errorf("livekit-server exited: %v (see --server-log)", lk.waitErr)
		case <-ctx.Done():
			lk.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			lk.stop()
			return nil, errors.New("livekit-server did not answer within 30 s (see --server-log)")
		}
	}
}

func (lk *liveKit) pid() int { return lk.cmd.Process.Pid }

// stop ends the server: SIGTERM, SIGKILL after 10 s.
func (lk *liveKit) stop() {
	defer os.RemoveAll(lk.dir)
	select {
	case <-lk.done:
		return
	default:
	}
	_ = lk.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-lk.done:
	case <-time.After(10 * time.Second):
		_ = lk.cmd.Process.Kill()
		<-lk.done
	}
}

// countCPUs counts the CPUs of a list as taskset -c takes it: "0", "0,2",
// "0-3".
func countCPUs(list string) (int, error) {
	n := 0
	for part := range strings.SplitSeq(list, ",") {
		a, b, isRange := strings.Cut(strings.TrimSpace(part), "-")
		lo, err := strconv.Atoi(a)
		if err != nil || lo < 0 {
			return 0, fmt.Errorf("CPU list %q: want e.g. 0 or 0,1 or 0-3", list)
		}
		hi := lo
		if isRange {
			if hi, err = strconv.Atoi(b); err != nil || hi < lo {
				return 0, fmt.Errorf("CPU list %q: want e.g. 0 or 0,1 or 0-3", list)
			}
		}
		n += hi - lo + 1
	}
	return n, nil
}
