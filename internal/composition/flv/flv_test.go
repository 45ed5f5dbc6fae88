package flv

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// builder makes synthetic FLV streams.
type builder struct{ bytes.Buffer }

func newBuilder(flags byte) *builder {
	b := &builder{}
	b.Write([]byte{'F', 'L', 'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0})
	return b
}

func (b *builder) tag(typ byte, ts uint32, data []byte) *builder {
	h := []byte{typ, byte(len(data) >> 16), byte(len(data) >> 8), byte(len(data)), byte(ts >> 16), byte(ts >> 8), byte(ts), byte(ts >> 24), 0, 0, 0}
	b.Write(h)
	b.Write(data)
	var prev [4]byte
	binary.BigEndian.PutUint32(prev[:], uint32(len(data)+tagHeaderLen))
	b.Write(prev[:])
	return b
}

func metaData() []byte {
	return append([]byte{2, 0, 10}, []byte("onMetaData\x08\x00\x00\x00\x00\x00\x00\x09")...)
}

func (b *builder) meta() *builder { return b.tag(TagScript, 0, metaData()) }
func (b *builder) avcSeq() *builder {
	return b.tag(TagVideo, 0, []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f})
}
func (b *builder) aacSeq() *builder { return b.tag(TagAudio, 0, []byte{0xaf, 0, 0x11, 0x90}) }
func (b *builder) key(ts uint32, n byte) *builder {
	return b.tag(TagVideo, ts, []byte{0x17, 1, 0, 0, 0, n, n, n})
}
func (b *builder) inter(ts uint32, n byte) *builder {
	return b.tag(TagVideo, ts, []byte{0x27, 1, 0, 0, 0, n})
}
func (b *builder) audio(ts uint32, n byte) *builder {
	return b.tag(TagAudio, ts, []byte{0xaf, 1, n, n})
}

// parseAll parses a whole FLV stream into its tags (and fails on errors).
func parseAll(t testing.TB, b []byte) (header []byte, tags []*Tag) {
	t.Helper()
	s := NewStream(Options{})
	got, err := s.parse(b)
	if err != nil {
		t.Fatalf("parsing a reader's output: %v", err)
	}
	if len(s.pending) != 0 {
		t.Fatalf("%d bytes of an incomplete tag at the end", len(s.pending))
	}
	return s.header, got
}

func readAll(t testing.TB, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	return b
}

// sample is a stream of header tags and 3 GOPs of 2 video frames (each
// keyframe's audio 5 ms before it).
func sample() *builder {
	b := newBuilder(5).meta().avcSeq().aacSeq()
	for g := range 3 {
		ts := uint32(1000 + 1000*g)
		b.audio(ts-5, byte(10*g)).key(ts, byte(10*g+1)).audio(ts+20, byte(10*g+2)).inter(ts+33, byte(10*g+3))
	}
	return b
}

func TestReaderFromStartIsTheStream(t *testing.T) {
	in := sample().Bytes()
	for _, chunk := range []int{1, 3, 7, 100, len(in)} {
		s := NewStream(Options{})
		r := s.NewReader()
		for i := 0; i < len(in); i += chunk {
			if _, err := s.Write(in[i:min(i+chunk, len(in))]); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		out := readAll(t, r)
		hdr, tags := parseAll(t, out)
		if !bytes.Equal(hdr, in[:13]) {
			t.Fatalf("chunk %d: header %x", chunk, hdr)
		}
		// The reader starts at the first keyframe (1000 → 0): the audio 5 ms
		// before it is left out, the header tags come first.
		wantTypes := []byte{TagScript, TagVideo, TagAudio, TagVideo, TagAudio, TagVideo}
		if len(tags) < len(wantTypes) {
			t.Fatalf("chunk %d: %d tags", chunk, len(tags))
		}
		for i, w := range wantTypes {
			if tags[i].Type != w {
				t.Fatalf("chunk %d: tag %d is type %d, want %d", chunk, i, tags[i].Type, w)
			}
		}
		if !tags[1].isAVCSequenceHeader() || !tags[2].isAACSequenceHeader() || !tags[3].IsKeyframe() {
			t.Fatalf("chunk %d: no sequence headers then a keyframe", chunk)
		}
		if tags[3].Timestamp != 0 || tags[4].Timestamp != 20 || tags[5].Timestamp != 33 {
			t.Fatalf("chunk %d: timestamps %d %d %d not rebased", chunk, tags[3].Timestamp, tags[4].Timestamp, tags[5].Timestamp)
		}
		// 3 header tags, then 4 tags of the first GOP less its early audio,
		// then 4 per GOP.
		if len(tags) != 3+3+4+4 {
			t.Fatalf("chunk %d: %d tags", chunk, len(tags))
		}
		if last := tags[len(tags)-1]; last.Timestamp != 2033 || last.Data()[5] != 23 {
			t.Fatalf("chunk %d: last tag at %d", chunk, last.Timestamp)
		}
	}
}

func TestReaderMidStreamStartsAtKeyframeWithHeaders(t *testing.T) {
	s := NewStream(Options{})
	b := sample()
	if _, err := s.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	r := s.NewReader()
	more := &builder{}
	more.inter(3066, 40).audio(3080, 41).key(4000, 42).audio(4010, 43)
	if _, err := s.Write(more.Bytes()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	_, tags := parseAll(t, readAll(t, r))
	if len(tags) != 5 {
		t.Fatalf("%d tags, want metadata, 2 sequence headers, keyframe and audio", len(tags))
	}
	if !tags[0].isMetadata() || !tags[1].isAVCSequenceHeader() || !tags[2].isAACSequenceHeader() {
		t.Fatal("the header tags do not come first")
	}
	if !tags[3].IsKeyframe() || tags[3].Timestamp != 0 || tags[3].Data()[5] != 42 || tags[4].Timestamp != 10 {
		t.Fatalf("keyframe %v at %d, audio at %d", tags[3].IsKeyframe(), tags[3].Timestamp, tags[4].Timestamp)
	}
	for _, h := range tags[:3] {
		if h.Timestamp != 0 {
			t.Fatalf("header tag at %d", h.Timestamp)
		}
	}
}

func TestNewSequenceHeaderReachesReaders(t *testing.T) {
	s := NewStream(Options{})
	s.Write(sample().Bytes())
	r := s.NewReader()
	b := &builder{}
	b.key(5000, 1).tag(TagVideo, 5033, []byte{0x17, 0, 0, 0, 0, 9, 9}).key(5033, 2)
	s.Write(b.Bytes())
	r2 := s.NewReader()
	s.Write((&builder{}).key(6000, 3).Bytes())
	s.Close()
	_, tags := parseAll(t, readAll(t, r))
	if n := len(tags); n != 3+3+1 || !tags[4].isAVCSequenceHeader() {
		t.Fatalf("%d tags; the new sequence header not passed on", n)
	}
	_, tags = parseAll(t, readAll(t, r2))
	if !bytes.Equal(tags[1].Data(), []byte{0x17, 0, 0, 0, 0, 9, 9}) {
		t.Fatalf("a later reader starts with the old sequence header %x", tags[1].Data())
	}
}

func TestAudioOnlyStreamStartsAtOnce(t *testing.T) {
	s := NewStream(Options{})
	r := s.NewReader()
	b := newBuilder(4).meta().aacSeq().audio(0, 1).audio(21, 2)
	s.Write(b.Bytes())
	s.Close()
	_, tags := parseAll(t, readAll(t, r))
	if len(tags) != 4 {
		t.Fatalf("%d tags of an audio-only stream", len(tags))
	}
}

func TestSlowReaderIsCutOffWithoutBlockingWrite(t *testing.T) {
	s := NewStream(Options{MaxBuffered: 4096})
	slow := s.NewReader()
	fast := s.NewReader()
	var got bytes.Buffer
	// drain reads what fast has queued, as a reader that keeps up does.
	drain := func() {
		buf := make([]byte, 700)
		for {
			fast.mu.Lock()
			n := fast.bytes
			fast.mu.Unlock()
			if n == 0 {
				return
			}
			k, err := fast.Read(buf)
			if err != nil {
				t.Fatalf("fast reader: %v", err)
			}
			got.Write(buf[:k])
		}
	}
	s.Write(newBuilder(5).meta().avcSeq().aacSeq().Bytes())
	frame := make([]byte, 1000)
	frame[0], frame[1] = 0x27, 1
	for i := range 100 {
		b := &builder{}
		if i%10 == 0 {
			b.key(uint32(i*33), byte(i))
		}
		b.tag(TagVideo, uint32(i*33+1), frame)
		// Write returns although slow is never read.
		if _, err := s.Write(b.Bytes()); err != nil {
			t.Fatal(err)
		}
		drain()
	}
	if st := s.Stats(); st.CutOff != 1 {
		t.Fatalf("%d readers cut off, want 1", st.CutOff)
	}
	if _, err := slow.Read(make([]byte, 10)); !errors.Is(err, ErrSlowReader) {
		t.Fatalf("slow reader: %v, want ErrSlowReader", err)
	}
	s.Close()
	if _, err := fast.Read(make([]byte, 10)); err != io.EOF {
		t.Fatalf("fast reader at the end: %v", err)
	}
	_, tags := parseAll(t, got.Bytes())
	if len(tags) != 3+10+100 {
		t.Fatalf("the fast reader got %d tags", len(tags))
	}
}

func TestCloseEndsBlockedReaders(t *testing.T) {
	s := NewStream(Options{})
	r := s.NewReader()
	errc := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		errc <- err
	}()
	s.Close()
	if err := <-errc; err != io.EOF {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := s.NewReader().Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a reader of a closed stream: %v", err)
	}
	if _, err := s.Write([]byte("FLV")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

func TestReaderClose(t *testing.T) {
	s := NewStream(Options{})
	r := s.NewReader()
	errc := make(chan error, 1)
	go func() {
		_, err := r.Read(make([]byte, 10))
		errc <- err
	}()
	r.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Read after the reader's Close: %v", err)
	}
	s.mu.Lock()
	n := len(s.readers)
	s.mu.Unlock()
	if n != 0 {
		t.Fatal("the stream still holds a closed reader")
	}
}

func TestMalformed(t *testing.T) {
	good := sample().Bytes()
	bad := map[string][]byte{
		"not FLV":            []byte("RIFF\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"),
		"tag type":           append(append([]byte(nil), good[:13]...), 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11),
		"PreviousTagSize":    append(append([]byte(nil), good[:13]...), 8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xaf, 0, 0, 0, 99),
		"encrypted":          append(append([]byte(nil), good[:13]...), 0x28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11),
		"header data offset": []byte("FLV\x01\x05\x00\x00\x00\x02\x00\x00\x00\x00"),
	}
	for name, b := range bad {
		s := NewStream(Options{})
		r := s.NewReader()
		_, err := s.Write(b)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Write: %v", name, err)
			continue
		}
		if _, err := s.Write(good); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: a Write after the error: %v", name, err)
		}
		if _, err := io.ReadAll(r); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: reader: %v", name, err)
		}
	}
}

func TestHeaderDataOffsetSkipped(t *testing.T) {
	in := sample().Bytes()
	long := append([]byte("FLV\x01\x05\x00\x00\x00\x0c\xaa\xbb\xcc"), in[9:]...)
	s := NewStream(Options{})
	r := s.NewReader()
	for _, c := range long {
		if _, err := s.Write([]byte{c}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	hdr, tags := parseAll(t, readAll(t, r))
	if hdr[8] != 9 || len(tags) != 14 {
		t.Fatalf("header %x, %d tags", hdr, len(tags))
	}
}

// TestRealEncode feeds a Stream with ffmpeg's FLV of a test pattern, opens
// a reader in the middle, and checks that ffmpeg decodes what the reader
// gives without an error, from a keyframe, with both streams.
func TestRealEncode(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg")
	}
	out, err := exec.Command("ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-c:a", "aac", "-f", "flv", "pipe:1").Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	s := NewStream(Options{})
	half := len(out) / 2
	s.Write(out[:half])
	r := s.NewReader()
	var got []byte
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		got = readAll(t, r)
	}()
	for i := half; i < len(out); i += 4096 {
		s.Write(out[i:min(i+4096, len(out))])
	}
	s.Close()
	wg.Wait()
	f := filepath.Join(t.TempDir(), "mid.flv")
	if err := os.WriteFile(f, got, 0o644); err != nil {
		t.Fatal(err)
	}
	dec, err := exec.Command("ffmpeg", "-v", "error", "-i", f, "-f", "null", "-").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(dec))) > 0 {
		t.Fatalf("decoding the reader's stream: %v: %s", err, dec)
	}
	probe, err := exec.Command("ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height:format=start_time,duration", "-of", "compact", f).Output()
	if err != nil {
		t.Fatal(err)
	}
	p := string(probe)
	if !strings.Contains(p, "codec_name=h264|width=320|height=240") || !strings.Contains(p, "codec_name=aac") {
		t.Fatalf("ffprobe: %s", p)
	}
	if !strings.Contains(p, "start_time=0.000") {
		t.Fatalf("the reader's stream does not start at 0: %s", p)
	}
}

func TestCodecs(t *testing.T) {
	s := NewStream(Options{})
	if v, a := s.Codecs(); v != "" || a != "" {
		t.Fatalf("codecs of an empty stream: %q %q", v, a)
	}
	s.Write(sample().Bytes())
	if v, a := s.Codecs(); v != "avc1.64001f" || a != "mp4a.40.2" {
		t.Fatalf("codecs %q %q", v, a)
	}
}
