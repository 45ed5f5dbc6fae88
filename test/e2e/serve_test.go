package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// `rostrum serve` as a newcomer starts it, media on every interface (what
// makes pion warn about its UDP mux): the start logs no warning, --pid-file
// names the server's process (what rostrum loadtest --server-pid needs,
// however the server was started) and is removed when it stops.
func TestServeStartsQuietlyAndWritesItsPID(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "rostrum")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/rostrum").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	pidFile := filepath.Join(dir, "rostrum.pid")
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"),
		"--rtc-udp-port", "0", "--rtc-tcp-port", "0", "--rtc-listen-ip", "0.0.0.0", "--pid-file", pidFile)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var start []string
	deadline := time.After(60 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("rostrum serve ended:\n%s", strings.Join(start, "\n"))
			}
			start = append(start, l)
			if strings.Contains(l, "rostrum serving") {
				break wait
			}
		case <-deadline:
			t.Fatal("rostrum serve did not start")
		}
	}
	testutil.Eventually(t, "the pid file", func() bool {
		b, err := os.ReadFile(pidFile)
		return err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(cmd.Process.Pid)
	})
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for l := range lines {
		start = append(start, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("rostrum serve after SIGTERM: %v", err)
	}
	for _, l := range start {
		// The one warning a clean start may give depends on the host: the
		// kernel capped the media socket's receive buffer (net.core.rmem_max
		// below 8 MiB and no CAP_NET_ADMIN); it names the sysctl to raise.
		if strings.Contains(l, "net.core.rmem_max") {
			continue
		}
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			t.Errorf("start and stop logged %q", l)
		}
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("the pid file is left after the server stopped: %v", err)
	}
}
