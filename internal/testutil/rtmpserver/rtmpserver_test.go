package rtmpserver

import (
	"os/exec"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// publish sends 2 s of a test pattern to url with ffmpeg.
func publish(t *testing.T, url string) {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "2",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-f", "flv", url).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg publishing to %s: %v: %s", url, err, out)
	}
}

func TestPublishCountedAndRecorded(t *testing.T) {
	for _, tls := range []bool{false, true} {
		s := Start(t, Options{TLS: tls})
		url := s.URL("live", "k1")
		if tls {
			// ffmpeg does not verify the server's certificate by default.
			url = s.URLTLS("live", "k1")
		}
		publish(t, url)
		testutil.Eventually(t, "the publish to end", func() bool {
			p := s.Publishes("live", "k1")
			return len(p) == 1 && !p[0].End.IsZero()
		})
		recs := s.Recordings("live", "k1")
		if len(recs) != 1 {
			t.Fatalf("tls %v: %d recordings", tls, len(recs))
		}
		p := testutil.FFprobe(t, recs[0])
		if c, w, h := p.Stream("video"); c != "h264" || w != 320 || h != 240 {
			t.Fatalf("recorded video %s %dx%d", c, w, h)
		}
		if c, _, _ := p.Stream("audio"); c != "aac" {
			t.Fatalf("recorded audio %s", c)
		}
		if d := p.Duration(); d < 1.5 {
			t.Fatalf("recorded %.2f s of 2", d)
		}
	}
}

func TestKillRestartDeny(t *testing.T) {
	s := Start(t)
	s.Kill()
	if err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2", "-t", "1", "-c:v", "libx264", "-f", "flv", s.URL("live", "x")).Run(); err == nil {
		t.Fatal("publishing to a killed server worked")
	}
	s.Restart()
	s.SetDeny(true)
	if out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2", "-t", "1", "-c:v", "libx264", "-f", "flv", s.URL("live", "x")).CombinedOutput(); err == nil {
		t.Fatalf("a refused publish worked: %s", out)
	}
	s.SetDeny(false)
	publish(t, s.URL("live", "x"))
	if n := len(s.Publishes("live", "x")); n != 1 {
		t.Fatalf("%d publishes counted", n)
	}
}
