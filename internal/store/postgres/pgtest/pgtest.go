// Package pgtest runs throw-away PostgreSQL clusters for tests: initdb in a
// temporary directory, the postgres server on a free loopback port, run as
// a non-root user (initdb and postgres refuse root), stopped and removed at
// the end.
//
// The binaries are Debian's (apt-get install postgresql puts them in
// /usr/lib/postgresql/<version>/bin, not on PATH); ROSTRUM_TEST_PG_BIN
// names another directory. When they are missing, Start skips the test,
// or fails it under CI=true, where a skipped database test would hide a
// broken install.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is one running PostgreSQL server with its own data directory.
type Cluster struct {
	dir  string // removed by Stop
	port int
	cmd  *exec.Cmd
	exit chan struct{} // closed when the server process has exited
	dbs  atomic.Int64

	stopOnce sync.Once
	stopErr  error
}

// Start starts a cluster for t and stops it when t ends. Without
// PostgreSQL it skips t (fails it under CI=true).
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin, err := BinDir()
	if err != nil {
		Missing(t, err)
	}
	c, err := StartIn(bin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("pgtest: stop: %v", err)
		}
	})
	return c
}

// Missing skips t because PostgreSQL is not installed, or fails it under
// CI=true.
func Missing(t testing.TB, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("pgtest: PostgreSQL is required under CI=true (scripts/test.sh installs it): %v", err)
	}
	t.Skipf("pgtest: PostgreSQL is not installed (apt-get install postgresql), skipping: %v", err)
}

// BinDir finds the directory of initdb and postgres.
func BinDir() (string, error) {
	if d := os.Getenv("ROSTRUM_TEST_PG_BIN"); d != "" {
		return d, hasBinaries(d)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// The newest version first: 9.6 < 15 numerically, not as strings.
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	if p, err := exec.LookPath("postgres"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		// Debian links initdb onto PATH on some machines, not postgres.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(real))
		}
	}
	for _, d := range dirs {
		if hasBinaries(d) == nil {
			return d, nil
		}
	}
	return "", errors.New("no initdb and postgres in /usr/lib/postgresql/*/bin or on PATH")
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func hasBinaries(dir string) error {
	for _, b := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return err
		}
	}
	return nil
}

// StartIn starts a cluster with the binaries in bin. The caller stops it.
func StartIn(bin string) (*Cluster, error) {
	cred, err := credential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rostrum-pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, exit: make(chan struct{})}
	fail := func(err error) (*Cluster, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %v\n%s", err, out))
	}
	// A free port can be taken between looking and binding; try again then.
	for attempt := 0; ; attempt++ {
		err := c.start(bin, data, cred)
		if err == nil {
			return c, nil
		}
		if attempt == 2 {
			return fail(err)
		}
	}
}

// credential is the user to run PostgreSQL as: the current one, unless it
// is root, then Debian's postgres user.
func credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and there is no postgres user to run PostgreSQL as (the postgresql package creates it): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func (c *Cluster) start(bin, data string, cred *syscall.Credential) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(c.dir, fmt.Sprintf("postgres-%d.log", port))
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	if cred != nil {
		os.Chown(logPath, int(cred.Uid), int(cred.Gid))
	}
	// fsync off: the cluster is thrown away, and the tests check the
	// store's transactions, not the disk's; it keeps a shared machine's
	// disk out of the tests' time.
	cmd := exec.Command(filepath.Join(bin, "postgres"), "-D", data,
		"-c", "listen_addresses=127.0.0.1", "-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+c.dir,
		"-c", "fsync=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig: a test binary killed by its timeout takes its server with
	// it (SIGINT is PostgreSQL's fast shutdown).
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	exit := make(chan struct{})
	go func() { cmd.Wait(); close(exit) }()
	c.cmd, c.port, c.exit = cmd, port, exit

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.url("postgres"))
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-exit:
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited at start: %s", out)
		case <-ctx.Done():
			cmd.Process.Kill()
			<-exit
			out, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres did not accept connections within a minute: %v\n%s", err, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

// NewDatabase creates an empty database and returns its URL.
func (c *Cluster) NewDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("rostrum_%d", c.dbs.Add(1))
	conn, err := pgx.Connect(ctx, c.url("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return c.url(name), nil
}

// Database is NewDatabase for a test: it fails t on error.
func (c *Cluster) Database(t testing.TB) string {
	t.Helper()
	u, err := c.NewDatabase(context.Background())
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return u
}

// Stop shuts the server down (fast shutdown: open sessions are ended)
// and removes its directory.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.exit:
		case <-time.After(30 * time.Second):
			c.cmd.Process.Kill()
			<-c.exit
			c.stopErr = errors.New("postgres did not stop within 30s; killed")
		}
		if err := os.RemoveAll(c.dir); err != nil && c.stopErr == nil {
			c.stopErr = err
		}
	})
	return c.stopErr
}

// shared is one cluster for a whole test binary, started by the first
// test that needs it and stopped by StopShared (from TestMain).
var shared struct {
	mu  sync.Mutex
	c   *Cluster
	err error
}

// SharedCluster returns the test binary's shared cluster, starting it on
// first use; without PostgreSQL it skips t (fails it under CI=true).
// TestMain must call StopShared after the tests.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c == nil && shared.err == nil {
		bin, err := BinDir()
		if err != nil {
			Missing(t, err)
		}
		shared.c, shared.err = StartIn(bin)
	}
	if shared.err != nil {
		t.Fatalf("pgtest: %v", shared.err)
	}
	return shared.c
}

// StopShared stops the shared cluster if one was started.
func StopShared() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.c == nil {
		return nil
	}
	err := shared.c.Stop()
	shared.c = nil
	return err
}

// String names the cluster's address, for logs.
func (c *Cluster) String() string {
	return strings.TrimSuffix(c.url(""), "/?sslmode=disable")
}
