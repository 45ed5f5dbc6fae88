package sfu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// The subscribers of BenchmarkSubscriberMemory run in a child process (this
// test binary again, as TestMemoryClientProcess): in the same process their
// pion peers would be in the heap measured, and what is measured is the
// server's side of a subscription alone.
const (
	memClientEnv = "ROSTRUM_MEM_CLIENTS" // number of subscribers the child makes
	memLinePfx   = "MEMCLIENT "          // the child's protocol lines on stdout
	// memPackets is how many packets every subscriber must have received
	// (video and audio alike) before the server is measured: pion's queues
	// grow with traffic, so an idle connection would measure low.
	memPackets = 150
)

type memMsg struct {
	SDP   string `json:"sdp,omitempty"`
	Ready bool   `json:"ready,omitempty"`
	Err   string `json:"err,omitempty"`
}

// BenchmarkSubscriberMemory measures the server's memory per subscription:
// one publisher (Opus + VP8, sending) and N subscribers, each one peer
// connection receiving both tracks, connected from another process. It
// reports the live heap (after a forced GC), the heap spans in use and the
// goroutine stacks per subscription, and goroutines per subscription, once
// every subscriber has received memPackets packets of each track (and,
// with ROSTRUM_MEM_HOLD, again that much later). With
// ROSTRUM_MEMPROFILE_DIR set it writes heap profiles before (base.pb.gz) and
// after (load.pb.gz) the subscribers joined, sampled every 2 KiB:
//
//	go tool pprof -sample_index=inuse_space -diff_base base.pb.gz -top load.pb.gz
//
// Nothing is asserted: the figures go in docs/performance.md.
func BenchmarkSubscriberMemory(b *testing.B) {
	dir := os.Getenv("ROSTRUM_MEMPROFILE_DIR")
	if dir != "" {
		runtime.MemProfileRate = 2048
	}
	for _, n := range []int{100} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			for range b.N {
				measureSubscriberMemory(b, n, dir)
			}
		})
	}
}

func measureSubscriberMemory(b *testing.B, n int, dir string) {
	hold, _ := time.ParseDuration(os.Getenv("ROSTRUM_MEM_HOLD"))
	// The context bounds the child process too (it is killed when the
	// context ends): long enough for joining n and holding them.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+hold)
	defer cancel()
	r := newTestEngine(b).NewRouter("memory")
	// The publisher (in this process) offers no NACK: its pion responder
	// would fill a history of sent packets while the subscribers are held,
	// a growth that is not the server's.
	tp := startPublisher(b, ctx, r, "pub", pubOpts{client: clientOpts{noNACK: true}})
	select {
	case <-tp.media:
	case <-ctx.Done():
		b.Fatal("no media from the publisher")
	}

	base := memSnapshot(b, dir, "base.pb.gz")

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestMemoryClientProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), memClientEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	toChild, err := cmd.StdinPipe()
	must(b, err)
	fromChild, err := cmd.StdoutPipe()
	must(b, err)
	must(b, cmd.Start())
	defer func() {
		_ = toChild.Close() // the child closes its peers and exits
		_ = cmd.Wait()
	}()
	lines := bufio.NewScanner(fromChild)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	enc := json.NewEncoder(toChild)
	next := func() memMsg {
		for lines.Scan() {
			line := lines.Text()
			if len(line) < len(memLinePfx) || line[:len(memLinePfx)] != memLinePfx {
				continue // the testing package's own output
			}
			var m memMsg
			must(b, json.Unmarshal([]byte(line[len(memLinePfx):]), &m))
			if m.Err != "" {
				b.Fatalf("client process: %s", m.Err)
			}
			return m
		}
		b.Fatalf("client process ended: %v", lines.Err())
		return memMsg{}
	}
	subs := make([]*Subscriber, 0, n)
	for i := range n {
		offer := next()
		sub, answer, err := r.Subscribe(ctx, fmt.Sprintf("s%d", i), "pub", offer.SDP, SubscribeOptions{})
		must(b, err)
		subs = append(subs, sub)
		must(b, enc.Encode(memMsg{SDP: answer}))
	}
	if !next().Ready {
		b.Fatal("client process: not ready")
	}

	load := memSnapshot(b, dir, "load.pb.gz")
	per := func(a, z uint64) float64 { return (float64(z) - float64(a)) / float64(n) }
	b.ReportMetric(per(base.ms.HeapAlloc, load.ms.HeapAlloc), "live-B/sub")
	b.ReportMetric(per(base.ms.HeapInuse, load.ms.HeapInuse), "heap-inuse-B/sub")
	b.ReportMetric(per(base.ms.StackInuse, load.ms.StackInuse), "stack-B/sub")
	b.ReportMetric(float64(load.goroutines-base.goroutines)/float64(n), "goroutines/sub")
	// ROSTRUM_MEM_HOLD (a duration) keeps the subscribers that much longer
	// and measures again: what grows with a connection's age.
	if hold > 0 {
		time.Sleep(hold)
		held := memSnapshot(b, dir, "held.pb.gz")
		b.ReportMetric(per(base.ms.HeapAlloc, held.ms.HeapAlloc), "held-live-B/sub")
	}
	for _, s := range subs {
		_ = s.Close()
	}
}

type memState struct {
	ms         runtime.MemStats
	goroutines int
}

// memSnapshot collects garbage and reads the heap, after the goroutines
// ended by a previous phase have had time to go.
func memSnapshot(b *testing.B, dir, profile string) memState {
	b.Helper()
	var s memState
	runtime.GC()
	runtime.GC()
	s.goroutines = runtime.NumGoroutine()
	runtime.ReadMemStats(&s.ms)
	if dir != "" {
		f, err := os.Create(filepath.Join(dir, profile))
		must(b, err)
		must(b, pprof.Lookup("heap").WriteTo(f, 0))
		must(b, f.Close())
		g, err := os.Create(filepath.Join(dir, "goroutines-"+profile+".txt"))
		must(b, err)
		must(b, pprof.Lookup("goroutine").WriteTo(g, 1))
		must(b, g.Close())
	}
	return s
}

// TestMemoryClientProcess is BenchmarkSubscriberMemory's client side; it
// does nothing unless started by the benchmark.
func TestMemoryClientProcess(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(memClientEnv))
	if n <= 0 {
		t.Skip("run by BenchmarkSubscriberMemory")
	}
	out := json.NewEncoder(os.Stdout)
	var outMu sync.Mutex
	send := func(m memMsg) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Fprint(os.Stdout, memLinePfx)
		_ = out.Encode(m)
	}
	fail := func(err error) {
		send(memMsg{Err: err.Error()})
		t.Fatal(err)
	}
	in := json.NewDecoder(os.Stdin)
	ctx := context.Background() // the benchmark's context ends this process

	api := clientAPI(t, clientOpts{})
	type counts struct{ audio, video atomic.Int64 }
	all := make([]*counts, n)
	var wg sync.WaitGroup
	pcs := make([]*webrtc.PeerConnection, 0, n)
	for i := range n {
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			fail(err)
		}
		pcs = append(pcs, pc)
		c := &counts{}
		all[i] = c
		recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := pc.AddTransceiverFromKind(k, recv); err != nil {
				fail(err)
			}
		}
		pc.OnTrack(func(tr *webrtc.TrackRemote, rc *webrtc.RTPReceiver) {
			cnt := &c.video
			if tr.Kind() == webrtc.RTPCodecTypeAudio {
				cnt = &c.audio
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				for {
					if _, _, err := tr.ReadRTP(); err != nil {
						return
					}
					cnt.Add(1)
				}
			}()
			go func() {
				defer wg.Done()
				for {
					if _, _, err := rc.ReadRTCP(); err != nil {
						return
					}
				}
			}()
		})
		send(memMsg{SDP: offerFrom(t, ctx, pc)})
		var answer memMsg
		if err := in.Decode(&answer); err != nil {
			fail(fmt.Errorf("reading answer %d: %w", i, err))
		}
		if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer.SDP}); err != nil {
			fail(err)
		}
	}
	for {
		done := 0
		for _, c := range all {
			if c.audio.Load() >= memPackets && c.video.Load() >= memPackets {
				done++
			}
		}
		if done == n {
			break
		}
		select {
		case <-ctx.Done():
			fail(fmt.Errorf("%d of %d subscribers received %d packets of each track", done, n, memPackets))
		case <-time.After(50 * time.Millisecond):
		}
	}
	send(memMsg{Ready: true})
	// Stay until the benchmark has measured and closes stdin.
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil && !errors.Is(err, os.ErrClosed) {
		t.Log(err)
	}
	for _, pc := range pcs {
		_ = pc.Close()
	}
	wg.Wait()
}
