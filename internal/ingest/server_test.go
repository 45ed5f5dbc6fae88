package ingest

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"

	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/stage"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// refuseAll is a service that knows no stream key.
type refuseAll struct{}

func (refuseAll) IngestByStreamKey(context.Context, string) (*ivs.IngestTarget, error) {
	return nil, ivs.ErrUnknownStreamKey
}
func (refuseAll) StageInfo(context.Context, string) (*ivs.StageInfo, error) { return nil, nil }
func (refuseAll) SetIngestState(context.Context, string, bool) error        { return errors.New("unexpected") }
func (refuseAll) PublishLocal(*stage.Identity, stage.ClientInfo, []sfu.LocalTrack, stage.LocalPublishOptions) (*stage.LocalPublication, error) {
	return nil, errors.New("unexpected")
}
func (refuseAll) RefuseLocal(*stage.Identity, stage.ClientInfo, string) error { return nil }

func startTestServer(t *testing.T) *Server {
	t.Helper()
	dir := t.TempDir()
	cert, err := LoadKeyPair(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"), true, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Listen(Config{RTMPAddr: "127.0.0.1:0", RTMPSAddr: "127.0.0.1:0", Certificate: cert, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(refuseAll{}, refuseAll{})
	t.Cleanup(s.Close)
	return s
}

// Garbage, a client that connects and says nothing, a player and a push
// with an unknown key: each is turned away, and Close leaves nothing.
func TestServerSurvivesWhatIsNotAPush(t *testing.T) {
	testutil.CheckLeaks(t)
	s := startTestServer(t)
	addr := s.RTMPAddr().String()

	junk := make([]byte, 64<<10)
	rand.Read(junk)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(junk)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	// Closed: EOF, or a reset since the server left garbage unread.
	if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the server did not close a connection of garbage")
	}
	c.Close()

	idle, err := net.Dial("tcp", addr) // closed by Close below
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()

	for _, u := range []string{"rtmp://" + addr + "/app/some-key", "rtmps://" + s.RTMPSAddr().String() + "/app/some-key"} {
		pu, _ := url.Parse(u)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cl := &gortmplib.Client{URL: pu, Publish: true, TLSConfig: insecureTLS()}
		err := cl.Initialize(ctx)
		cancel()
		if err == nil {
			cl.Close()
			t.Fatalf("%s: a push with an unknown key was accepted", u)
		}
	}
	pu, _ := url.Parse("rtmp://" + addr + "/app/some-key")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	player := &gortmplib.Client{URL: pu, Publish: false}
	if err := player.Initialize(ctx); err == nil {
		player.Close()
		t.Fatal("a player was accepted by an ingest-only server")
	}
	s.Close()
	if s.Live() != 0 {
		t.Fatal("streams left after Close")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("the listener still accepts after Close")
	}
}

func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} } // the self-signed test pair
