package ingest

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/rostrum-dev/rostrum/internal/testutil"
)

func needFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ffmpeg is needed")
		}
		t.Skip("ffmpeg is needed")
	}
}

// ffmpegFile makes a file with ffmpeg.
func ffmpegFile(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", append(append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOggReaderReturnsTheEncodersPackets(t *testing.T) {
	needFFmpeg(t)
	// 510 kbit/s stereo Opus: packets over 255 bytes, laced across
	// segments, and pages that hold many packets.
	data := ffmpegFile(t, "tone.ogg", "-f", "lavfi", "-i", "sine=frequency=1000:duration=2", "-ac", "2", "-c:a", "libopus", "-b:a", "510k", "-frame_duration", "20")
	r := oggReader{r: bufio.NewReader(bytes.NewReader(data))}
	var pkts [][]byte
	for {
		p, err := r.next()
		if err != nil {
			break
		}
		pkts = append(pkts, p)
	}
	if len(pkts) < 2 || !bytes.HasPrefix(pkts[0], []byte("OpusHead")) || !bytes.HasPrefix(pkts[1], []byte("OpusTags")) {
		t.Fatalf("%d packets; the first two are not OpusHead and OpusTags", len(pkts))
	}
	audio := pkts[2:]
	big := 0
	for _, p := range audio {
		// TOC: every packet is one 20 ms frame (RFC 6716 §3.1: configs
		// 1, 5, 9 (SILK), 13, 15 (hybrid), 19, 23, 27, 31 (CELT) are
		// 20 ms; code 0 is one frame).
		if !opus20ms[p[0]>>3] || p[0]&0x03 != 0 {
			t.Fatalf("packet TOC %08b: not one 20 ms frame", p[0])
		}
		if len(p) > 255 {
			big++
		}
	}
	// 2 s of 20 ms packets (the encoder's padding may add one).
	if len(audio) < 100 || len(audio) > 102 || big == 0 {
		t.Fatalf("%d audio packets, %d over 255 bytes", len(audio), big)
	}
}

var opus20ms = map[byte]bool{1: true, 5: true, 9: true, 13: true, 15: true, 19: true, 23: true, 27: true, 31: true}

func TestTranscoderTurnsAACIntoOpus(t *testing.T) {
	needFFmpeg(t)
	testutil.CheckLeaks(t)
	adts := ffmpegFile(t, "tone.aac", "-f", "lavfi", "-i", "sine=frequency=440:duration=3:sample_rate=44100", "-ac", "2", "-c:a", "aac", "-f", "adts")
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(adts); err != nil {
		t.Fatal(err)
	}
	conf := &mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelConfig: pkts[0].ChannelConfig}
	if err := checkAAC(conf); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got [][]byte
	tr, err := startTranscoder("ffmpeg", conf, func(p []byte) {
		mu.Lock()
		got = append(got, append([]byte(nil), p...))
		mu.Unlock()
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		tr.push(p.AU)
	}
	// Opus comes out while the stream is live, not only at its end.
	testutil.Eventually(t, "Opus packets while AAC still flows", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	if err := tr.close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range got {
		if !opus20ms[p[0]>>3] || p[0]&0x03 != 0 {
			t.Fatalf("packet TOC %08b: not one 20 ms Opus frame", p[0])
		}
	}
	// 3 s of AAC is 150 packets of 20 ms; what ffmpeg held back when its
	// input was cut (its decoder's and encoder's delay) is lost.
	if len(got) < 130 || len(got) > 152 {
		t.Fatalf("%d Opus packets for 3 s of AAC", len(got))
	}
}

func TestCheckAAC(t *testing.T) {
	for _, c := range []*mpeg4audio.AudioSpecificConfig{
		nil,
		{Type: mpeg4audio.ObjectTypeSBR, SampleRate: 44100, ChannelConfig: 2},
		{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelConfig: 6},
	} {
		if err := checkAAC(c); err == nil {
			t.Errorf("%+v taken", c)
		}
	}
	if err := checkAAC(&mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 44100, ChannelConfig: 1}); err != nil {
		t.Error(err)
	}
}

func TestStreamKeyOf(t *testing.T) {
	for path, want := range map[string]string{
		"/app/rt_1_us-east-1_abc_def": "rt_1_us-east-1_abc_def",
		"/app/key":                    "key",
		"/live/key":                   "",
		"/app/":                       "",
		"/app/a/b":                    "",
		"/app":                        "",
	} {
		got, ok := streamKeyOf(&url.URL{Path: path})
		if got != want || ok != (want != "") {
			t.Errorf("%s: %q %v, want %q", path, got, ok, want)
		}
	}
	if redactURL("/app/rt_123456789012_us-east-1_secret") != "/app/…" {
		t.Error("a stream key reaches the log")
	}
}
