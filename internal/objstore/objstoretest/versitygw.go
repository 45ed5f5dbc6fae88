package objstoretest

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// VersityGW is a running Versity S3 gateway serving a temporary folder over
// the S3 API on loopback: a real S3-compatible service for tests.
type VersityGW struct {
	Endpoint        string // http://127.0.0.1:PORT
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	Dir             string // the folder it serves: bucket B, key K is Dir/B/K
}

// VersityGWVersion is the gateway the tests are written against;
// scripts/test.sh installs it.
const VersityGWVersion = "v1.8.0"

// FindVersityGW finds the versitygw binary on PATH, in GOBIN or in
// GOPATH/bin (where `go install` puts it).
func FindVersityGW() (string, error) {
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	for _, p := range filepath.SplitList(gopath) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("versitygw not found on PATH or in GOBIN/GOPATH/bin; install it with `go install github.com/versity/versitygw/cmd/versitygw@%s` (scripts/test.sh does)", VersityGWVersion)
}

// StartVersityGW starts a gateway for the test and stops it when the test
// ends. Without the binary the test skips, and fails under CI=true, where
// scripts/test.sh has installed it.
func StartVersityGW(t testing.TB) *VersityGW {
	t.Helper()
	bin, err := FindVersityGW()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skipf("skipping the S3 half: %v", err)
	}
	g := &VersityGW{
		Region:          "us-east-1",
		AccessKeyID:     "ROSTRUMTESTROOTKEY01",
		SecretAccessKey: "rostrum-test-root-secret-key-0000000000",
		Dir:             t.TempDir(),
	}
	// The free port is found by binding and closing, so another process may
	// take it before the gateway does: then the gateway exits, and another
	// port is tried.
	var lastErr error
	for range 5 {
		if err := g.start(t, bin); err != nil {
			lastErr = err
			continue
		}
		return g
	}
	t.Fatalf("versitygw did not start: %v", lastErr)
	return nil
}

// syncBuffer collects a process's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (g *VersityGW) start(t testing.TB, bin string) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	var out syncBuffer
	cmd := exec.Command(bin,
		"--port", addr,
		"--access", g.AccessKeyID,
		"--secret", g.SecretAccessKey,
		"--region", g.Region,
		"--quiet",
		"posix", g.Dir)
	cmd.Stdout, cmd.Stderr = &out, &out
	// Only what the flags say: no VGW_* or ROOT_* variables of the machine.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Kill()
		<-exited
	}
	g.Endpoint = "http://" + addr
	// Ready when it answers HTTP (anything: an unsigned request is refused).
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("versitygw exited (%v): %s", err, out.String())
		default:
		}
		resp, err := client.Get(g.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("versitygw did not answer at %s within 60s: %v; output: %s", addr, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("versitygw output:\n%s", out.String())
		}
	})
	return nil
}
