// Package rtmpserver runs a real RTMP server for tests: nginx with Debian's
// libnginx-mod-rtmp, on free loopback ports, in the test's temporary
// folder, stopped when the test ends. It counts the publish connections
// (nginx-rtmp's on_publish and on_publish_done callbacks to an HTTP server
// of the test), records what each publish sent (record all, one FLV file
// per publish) for ffprobe, and can be killed and started again on the
// same ports. With TLS it also accepts RTMPS: nginx's stream module
// (libnginx-mod-stream) terminates TLS with a self-signed certificate in
// front of the RTMP port, as an RTMPS ingest does.
//
// Without nginx and its RTMP module a test that asks for one skips, and
// fails under CI=true (scripts/test.sh installs them).
package rtmpserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Module paths of Debian's packages.
const (
	rtmpModule   = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
	streamModule = "/usr/lib/nginx/modules/ngx_stream_module.so"
)

// Options choose what the server offers.
type Options struct {
	// Apps are the RTMP applications it accepts; default "live".
	Apps []string
	// TLS adds an RTMPS port (URLTLS).
	TLS bool
	// Deny makes on_publish refuse every publish (403): the server accepts
	// the connection but not the stream.
	Deny bool
}

// Server is a running nginx-rtmp.
type Server struct {
	t        testing.TB
	dir      string
	bin      string
	opts     Options
	rtmpPort int
	tlsPort  int
	hook     *http.Server
	hookAddr string

	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
	publish  []Publish
	deny     bool
	starts   int
	stopping bool
}

// Publish is one publish connection the server saw.
type Publish struct {
	App, Name, Addr, ClientID string
	Start                     time.Time
	End                       time.Time // zero while it goes on
}

// Find returns the nginx binary, or why it cannot be used.
func Find() (string, error) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/sbin/nginx"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return "", fmt.Errorf("nginx is not installed (apt-get install nginx libnginx-mod-rtmp libnginx-mod-stream)")
	}
	if _, err := os.Stat(rtmpModule); err != nil {
		return "", fmt.Errorf("nginx's RTMP module is not installed (apt-get install libnginx-mod-rtmp)")
	}
	return bin, nil
}

// Start starts a server for the test; it is stopped when the test ends.
func Start(t testing.TB, opts ...Options) *Server {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if len(o.Apps) == 0 {
		o.Apps = []string{"live"}
	}
	bin, err := Find()
	if err == nil && o.TLS {
		if _, e := os.Stat(streamModule); e != nil {
			err = fmt.Errorf("nginx's stream module is not installed (apt-get install libnginx-mod-stream)")
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true: %v", err)
		}
		t.Skipf("no RTMP server: %v", err)
	}
	s := &Server{t: t, dir: t.TempDir(), bin: bin, opts: o, deny: o.Deny}
	for _, app := range o.Apps {
		if err := os.MkdirAll(filepath.Join(s.dir, "rec", app), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if o.TLS {
		if err := writeCert(s.dir); err != nil {
			t.Fatal(err)
		}
	}
	s.startHook()
	t.Cleanup(s.stop)
	var lastErr error
	for range 5 {
		s.rtmpPort, s.tlsPort = freePort(t), 0
		if o.TLS {
			s.tlsPort = freePort(t)
		}
		if lastErr = s.run(); lastErr == nil {
			return s
		}
	}
	t.Fatalf("nginx did not start: %v", lastErr)
	return nil
}

// URL is the rtmp:// URL of a stream: app and stream key.
func (s *Server) URL(app, key string) string {
	return fmt.Sprintf("rtmp://127.0.0.1:%d/%s/%s", s.rtmpPort, app, key)
}

// URLTLS is the rtmps:// URL of a stream (Options.TLS).
func (s *Server) URLTLS(app, key string) string {
	if s.tlsPort == 0 {
		s.t.Fatal("rtmpserver: URLTLS of a server started without TLS")
	}
	return fmt.Sprintf("rtmps://127.0.0.1:%d/%s/%s", s.tlsPort, app, key)
}

// CAFile is the PEM file of the self-signed certificate of the RTMPS port
// (Options.TLS): what a client that verifies its peer must trust.
func (s *Server) CAFile() string {
	if s.tlsPort == 0 {
		s.t.Fatal("rtmpserver: CAFile of a server started without TLS")
	}
	return filepath.Join(s.dir, "cert.pem")
}

// Publishes returns the publish connections of app/key so far, in order.
func (s *Server) Publishes(app, key string) []Publish {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Publish
	for _, p := range s.publish {
		if p.App == app && p.Name == key {
			out = append(out, p)
		}
	}
	return out
}

// Publishing reports whether a publish of app/key is going on.
func (s *Server) Publishing(app, key string) bool {
	for _, p := range s.Publishes(app, key) {
		if p.End.IsZero() {
			return true
		}
	}
	return false
}

// SetDeny makes on_publish refuse (true) or accept publishes from now on.
func (s *Server) SetDeny(deny bool) {
	s.mu.Lock()
	s.deny = deny
	s.mu.Unlock()
}

// Recordings returns the FLV files nginx recorded for app/key, one per
// publish, oldest first. A file is complete once its publish has ended.
func (s *Server) Recordings(app, key string) []string {
	files, _ := filepath.Glob(filepath.Join(s.dir, "rec", app, key+"-*.flv"))
	sort.Strings(files) // nginx names them <key>-<unix time>.flv
	return files
}

// Kill kills nginx at once (SIGKILL): its connections break as when a
// server crashes. Publishes going on end without on_publish_done; they
// are marked ended here.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
	s.mu.Lock()
	for i := range s.publish {
		if s.publish[i].End.IsZero() {
			s.publish[i].End = time.Now()
		}
	}
	s.mu.Unlock()
}

// Restart starts nginx again on the same ports (after Kill).
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	var err error
	for range 20 {
		if err = s.run(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond) // the port may still be in TIME_WAIT use
	}
	s.t.Fatalf("nginx did not start again: %v", err)
}

// ErrorLog is nginx's error log, for failing tests.
func (s *Server) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
	return string(b)
}

func (s *Server) config() string {
	var b strings.Builder
	fmt.Fprintf(&b, "load_module %s;\n", rtmpModule)
	if s.opts.TLS {
		fmt.Fprintf(&b, "load_module %s;\n", streamModule)
	}
	fmt.Fprintf(&b, `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
rtmp {
    server {
        listen 127.0.0.1:%[2]d;
        chunk_size 4096;
        notify_method post;
`, s.dir, s.rtmpPort)
	for _, app := range s.opts.Apps {
		fmt.Fprintf(&b, `        application %[1]s {
            live on;
            record all;
            record_path %[2]s/rec/%[1]s;
            record_unique on;
            record_suffix .flv;
            on_publish http://%[3]s/on_publish;
            on_publish_done http://%[3]s/on_publish_done;
        }
`, app, s.dir, s.hookAddr)
	}
	b.WriteString("    }\n}\n")
	if s.opts.TLS {
		fmt.Fprintf(&b, `stream {
    server {
        listen 127.0.0.1:%d ssl;
        ssl_certificate %[2]s/cert.pem;
        ssl_certificate_key %[2]s/key.pem;
        proxy_pass 127.0.0.1:%[3]d;
    }
}
`, s.tlsPort, s.dir, s.rtmpPort)
	}
	return b.String()
}

// run starts nginx and waits until it accepts connections.
func (s *Server) run() error {
	conf := filepath.Join(s.dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(s.config()), 0o644); err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "-p", s.dir, "-e", filepath.Join(s.dir, "error.log"), "-c", conf)
	out, err := os.OpenFile(filepath.Join(s.dir, "nginx.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	ports := []int{s.rtmpPort}
	if s.tlsPort != 0 {
		ports = append(ports, s.tlsPort)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, p := range ports {
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p), time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				b, _ := os.ReadFile(filepath.Join(s.dir, "nginx.out"))
				return fmt.Errorf("nginx exited: %s %s", b, s.ErrorLog())
			default:
			}
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				<-exited
				return fmt.Errorf("nginx does not accept connections on port %d", p)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.starts++
	s.mu.Unlock()
	return nil
}

// stop ends nginx gracefully (SIGQUIT lets it close its recordings), then
// the callback server.
func (s *Server) stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.stopping = true
	s.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	if s.hook != nil {
		_ = s.hook.Close()
	}
}

// startHook serves nginx-rtmp's notifications.
func (s *Server) startHook() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	s.hookAddr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("/on_publish", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		s.mu.Lock()
		deny := s.deny
		if !deny {
			s.publish = append(s.publish, Publish{
				App: r.PostForm.Get("app"), Name: r.PostForm.Get("name"), Addr: r.PostForm.Get("addr"),
				ClientID: r.PostForm.Get("clientid"), Start: time.Now(),
			})
		}
		s.mu.Unlock()
		if deny {
			http.Error(w, "publishing is refused", http.StatusForbidden)
		}
	})
	mux.HandleFunc("/on_publish_done", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		s.mu.Lock()
		for i := range s.publish {
			p := &s.publish[i]
			if p.ClientID == r.PostForm.Get("clientid") && p.App == r.PostForm.Get("app") && p.End.IsZero() {
				p.End = time.Now()
			}
		}
		s.mu.Unlock()
	})
	s.hook = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.hook.Serve(ln) }()
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// writeCert writes a self-signed certificate for 127.0.0.1 and localhost.
func writeCert(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "rostrum test RTMPS"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		// Its own authority, so that a client given it as a CA trusts it.
		IsCA:                  true,
		BasicConstraintsValid: true,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
}
