package loadtest

import (
	"math"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 10000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5 * time.Millisecond}, {0.95, 9500 * time.Microsecond}, {0.99, 9900 * time.Microsecond}} {
		got := h.quantile(c.q)
		if rel := math.Abs(float64(got-c.want)) / float64(c.want); rel > 0.03 {
			t.Errorf("q%.2f = %v, want %v ±3%%", c.q, got, c.want)
		}
	}
	if h.count() != 10000 || time.Duration(h.max.Load()) != 10*time.Millisecond {
		t.Errorf("count %d max %v", h.count(), time.Duration(h.max.Load()))
	}
	if m := h.mean(); m < 5*time.Millisecond-time.Microsecond || m > 5*time.Millisecond+time.Microsecond {
		t.Errorf("mean %v", m)
	}
	var empty histogram
	if p := empty.percentiles(); p != (Percentiles{}) {
		t.Errorf("empty: %+v", p)
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Every value falls in the bucket whose bounds hold it.
	for _, v := range []int64{0, 1, 31, 32, 33, 63, 64, 65, 1000, 123456789, 1 << 40} {
		i := histIndex(v)
		if v < histLow(i) || v >= histHigh(i) {
			t.Errorf("%d: bucket %d is [%d, %d)", v, i, histLow(i), histHigh(i))
		}
	}
	if histIndex(math.MaxInt64) >= histBuckets {
		t.Error("the largest value has no bucket")
	}
}

func TestJitter(t *testing.T) {
	// Packets 20 ms apart in RTP time arriving exactly 20 ms apart: no
	// jitter; arriving alternately 5 ms early and late: some.
	j := jitter{clock: 48000}
	at := time.Unix(1000, 0)
	for i := range 100 {
		j.add(uint32(i*960), at.Add(time.Duration(i)*20*time.Millisecond))
	}
	if j.ms() > 0.001 {
		t.Errorf("steady stream: jitter %.3f ms", j.ms())
	}
	k := jitter{clock: 48000}
	for i := range 200 {
		skew := 5 * time.Millisecond
		if i%2 == 0 {
			skew = -skew
		}
		k.add(uint32(i*960), at.Add(time.Duration(i)*20*time.Millisecond+skew))
	}
	if got := k.ms(); got < 8 || got > 10.5 {
		t.Errorf("±5 ms stream: jitter %.2f ms, want about 10", got)
	}
}

func TestParseFlags(t *testing.T) {
	for in, want := range map[string]int{"1.5M": 1_500_000, "1500k": 1_500_000, "800000": 800_000} {
		if got, err := parseBitrate(in); err != nil || got != want {
			t.Errorf("parseBitrate(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "fast", "1k", "1G"} {
		if _, err := parseBitrate(bad); err == nil {
			t.Errorf("parseBitrate(%q) accepted", bad)
		}
	}
	if w, h, err := parseResolution("1280x720"); err != nil || w != 1280 || h != 720 {
		t.Errorf("parseResolution = %d, %d, %v", w, h, err)
	}
	if _, _, err := parseResolution("720p"); err == nil {
		t.Error("parseResolution(720p) accepted")
	}
	cpus, err := parseCPUList("0,2-4")
	if err != nil || len(cpus) != 4 || cpus[0] != 0 || cpus[3] != 4 {
		t.Errorf("parseCPUList = %v, %v", cpus, err)
	}
	for _, bad := range []string{"", "a", "3-1", "2000"} {
		if _, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) accepted", bad)
		}
	}
	if !isLoopback("http://127.0.0.1:8080") || !isLoopback("http://localhost") || isLoopback("http://10.0.0.1:8080") {
		t.Error("isLoopback")
	}
	if thousands(1234567.4) != "1,234,567" || thousands(12) != "12" {
		t.Errorf("thousands: %s %s", thousands(1234567.4), thousands(12))
	}
}

func TestMainRefusesBadInput(t *testing.T) {
	var out, errs discard
	if code := Main([]string{"nonsense"}, &out, &errs); code != 2 {
		t.Errorf("unknown mode: exit %d", code)
	}
	if code := Main([]string{"--video-bitrate", "fast"}, &out, &errs); code != 1 {
		t.Errorf("bad bitrate: exit %d", code)
	}
	if code := Main([]string{"api", "--endpoint", "http://127.0.0.1:1", "--server-cpus", "0"}, &out, &errs); code != 1 {
		t.Errorf("--server-cpus with --endpoint: exit %d", code)
	}
	if code := Main([]string{"--pace", "-1"}, &out, &errs); code != 1 {
		t.Errorf("negative --pace: exit %d", code)
	}
	if code := Main([]string{"--pace-burst", "-1ms"}, &out, &errs); code != 1 {
		t.Errorf("negative --pace-burst: exit %d", code)
	}
	if code := Main([]string{"--help"}, &out, &errs); code != 0 {
		t.Errorf("--help: exit %d", code)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestParseUDPCounters(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n" +
		"Udp: 17261147 3573 167217 17432708 167210 0 7 0 0\n" +
		"UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n" +
		"UdpLite: 0 0 5 0 5 0 0 0 0\n"
	got, err := parseUDPCounters(snmp)
	if err != nil {
		t.Fatal(err)
	}
	if want := (UDPCounters{InErrors: 167217, RcvbufErrors: 167210}); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range []string{
		"",
		"Udp: InDatagrams InErrors\nUdp: 1 2\n",  // no RcvbufErrors
		"Udp: InErrors RcvbufErrors\nUdp: 1\n",   // short row
		"Udp: InErrors RcvbufErrors\nUdp: 1 x\n", // not a number
		"Tcp: InErrors RcvbufErrors\nTcp: 1 2\n", // not UDP
	} {
		if c, err := parseUDPCounters(bad); err == nil {
			t.Errorf("%q: got %+v, want an error", bad, c)
		}
	}
	// This machine's own file, where there is one.
	if _, err := os.Stat("/proc/net/snmp"); err == nil {
		if _, err := readUDPCounters(); err != nil {
			t.Errorf("/proc/net/snmp: %v", err)
		}
	}
}

func TestSumSocketDrops(t *testing.T) {
	table := "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
		" 8696: 0100007F:C94E 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 432865 2 000000006efac1ec 3\n" +
		"12152: 0100007F:D6CE 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 432876 2 0000000005afd4db 40\n" +
		"12153: 0100007F:D6CF 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 432877 2 0000000005afd4dc 500\n"
	got, err := sumSocketDrops(table, map[string]bool{"432865": true, "432877": true})
	if err != nil || got != 503 {
		t.Fatalf("got %d, %v; want 503", got, err)
	}
	if _, err := sumSocketDrops(strings.Replace(table, " 40\n", " x\n", 1), map[string]bool{"432876": true}); err == nil {
		t.Fatal("a drops column that is not a number: want an error")
	}
	// This process's own sockets, where /proc exists: one it opens counts 0.
	if _, err := os.Stat("/proc/self/net/udp"); err == nil {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if d, err := readSocketDrops(os.Getpid()); err != nil || d != 0 {
			t.Fatalf("own sockets: %d, %v", d, err)
		}
	}
}

// The publishers' pacing rate is the multiple of what their video sends,
// all simulcast layers together; 0 or no video leaves them unpaced.
func TestPacing(t *testing.T) {
	o := MediaOptions{VideoBitrate: 1_500_000, Pace: 2.5, PaceBurst: 40 * time.Millisecond}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	m := &mediaRun{o: o}
	if p := m.pacing(); p.Rate != 3_750_000 || p.Burst != 40*time.Millisecond {
		t.Errorf("pacing %+v, want 3.75 Mbit/s with 40 ms bursts", p)
	}
	m.o.Simulcast = true
	if p := m.pacing(); p.Rate != int(2.5*(1_500_000+500_000+150_000)) {
		t.Errorf("simulcast pacing %+v, want 2.5 × all layers", p)
	}
	m.o.Simulcast = false
	m.video = &videoFile{bitrate: 1_400_000}
	if p := m.pacing(); p.Rate != 3_500_000 {
		t.Errorf("video file pacing %+v, want 2.5 × the file's bitrate", p)
	}
	m.video = nil
	for _, off := range []MediaOptions{{VideoBitrate: 1_500_000}, {VideoBitrate: 1_500_000, Pace: 2.5, NoVideo: true}} {
		if p := (&mediaRun{o: off}).pacing(); p.Rate != 0 {
			t.Errorf("%+v: paced %+v, want unpaced", off, p)
		}
	}
	bad := MediaOptions{Pace: -1}
	if err := bad.defaults(); err == nil {
		t.Error("negative pace accepted")
	}
	if s := (Pacing{}).String(); !strings.Contains(s, "unpaced") {
		t.Errorf("unpaced described as %q", s)
	}
	if s := (Pacing{Multiple: 2.5, Rate: 3_750_000, BurstMs: 40}).String(); !strings.Contains(s, "2.5 ×") || !strings.Contains(s, "40 ms") {
		t.Errorf("paced described as %q", s)
	}
}
