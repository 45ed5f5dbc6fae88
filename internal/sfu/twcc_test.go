package sfu

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5/packetio"
	"github.com/pion/webrtc/v4"
)

const testTCCID = 3

// rtpWithTCC is an RTP packet of ssrc with sequence number seq carrying
// transport-wide number tseq (extension testTCCID) among other extensions,
// in the one-byte form or, with twoByte, the two-byte form.
func rtpWithTCC(t testing.TB, ssrc uint32, seq, tseq uint16, twoByte bool) []byte {
	t.Helper()
	h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: 1000, SSRC: ssrc}
	if twoByte {
		h.Extension, h.ExtensionProfile = true, 0x1000
	}
	must(t, h.SetExtension(1, []byte("mid")))
	tb := make([]byte, 2)
	binary.BigEndian.PutUint16(tb, tseq)
	must(t, h.SetExtension(testTCCID, tb))
	must(t, h.SetExtension(5, []byte{1, 2, 3}))
	p := rtp.Packet{Header: h, Payload: []byte{0x10, 0, 0, 0, 1, 2, 3}}
	b, err := p.Marshal()
	must(t, err)
	return b
}

func TestTransportSequence(t *testing.T) {
	for _, two := range []bool{false, true} {
		b := rtpWithTCC(t, 1, 7, 4242, two)
		if got, ok := transportSequence(b, testTCCID); !ok || got != 4242 {
			t.Errorf("two-byte %v: got %d %v, want 4242", two, got, ok)
		}
		if _, ok := transportSequence(b, 9); ok {
			t.Errorf("two-byte %v: found an extension that is not there", two)
		}
		// Cut anywhere: never a panic, never a number from outside.
		for n := range len(b) {
			if v, ok := transportSequence(b[:n], testTCCID); ok && v != 4242 {
				t.Errorf("cut at %d: %d", n, v)
			}
		}
	}
	plain, err := (&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: 1, SSRC: 1}, Payload: []byte{1}}).Marshal()
	must(t, err)
	if _, ok := transportSequence(plain, testTCCID); ok {
		t.Error("found an extension in a packet without any")
	}
}

func TestArrivalTable(t *testing.T) {
	var tab arrivalTable
	tab.put(0xdeadbeef, 10, 123)
	tab.put(0xdeadbeef, 11, 456)
	if at, ok := tab.get(0xdeadbeef, 10); !ok || at != 123 {
		t.Errorf("got %d %v", at, ok)
	}
	if _, ok := tab.get(0xdeadbef0, 10); ok {
		t.Error("another SSRC's packet found")
	}
	// A packet whose slot was taken since reads as unknown, not as the
	// newer packet's time.
	old := uint16(10)
	for s := uint32(1); ; s++ {
		if arrivalIndex(s, 99) == arrivalIndex(0xdeadbeef, old) {
			tab.put(s, 99, 789)
			break
		}
	}
	if _, ok := tab.get(0xdeadbeef, old); ok {
		t.Error("an overwritten slot answered for its old packet")
	}
	var none *arrivalTable
	if _, ok := none.get(1, 1); ok {
		t.Error("a nil table found a packet")
	}
	// What the socket notes: RTP, not RTCP.
	rtcpPkt, err := (&rtcp.ReceiverReport{SSRC: 77}).Marshal()
	must(t, err)
	tab.noteRTP(rtcpPkt, 1)
	if _, ok := tab.get(77, binary.BigEndian.Uint16(rtcpPkt[2:4])); ok {
		t.Error("an RTCP packet was noted as RTP")
	}
	tab.noteRTP(rtpWithTCC(t, 78, 5, 1, false), 42)
	if at, ok := tab.get(78, 5); !ok || at != 42 {
		t.Errorf("RTP not noted: %d %v", at, ok)
	}
}

// TestStampedConnNotesArrivals: the engine's socket notes each RTP
// packet's arrival, from the kernel's receive time on Linux, and passes
// every datagram on unchanged.
func TestStampedConnNotesArrivals(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	must(t, err)
	defer pc.Close()
	var tab arrivalTable
	c := stampArrivals(newSendConn(pc.(*net.UDPConn)), pc.(*net.UDPConn), &tab, nil).(*stampedConn)
	if want := recvTimestampOOBSize > 0; c.kernel != want {
		t.Errorf("kernel receive times: %v, want %v", c.kernel, want)
	}
	out, err := net.Dial("udp4", pc.LocalAddr().String())
	must(t, err)
	defer out.Close()
	pkt := rtpWithTCC(t, 0xabcdef01, 300, 9, false)
	before := nanotime()
	_, err = out.Write(pkt)
	must(t, err)
	_, err = out.Write([]byte("not rtp"))
	must(t, err)
	must(t, pc.SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, 1500)
	n, from, err := c.ReadFromAddrPort(buf)
	must(t, err)
	after := nanotime()
	if string(buf[:n]) != string(pkt) || from.Port() != uint16(out.LocalAddr().(*net.UDPAddr).Port) {
		t.Fatalf("read %d bytes from %v", n, from)
	}
	at, ok := tab.get(0xabcdef01, 300)
	if !ok {
		t.Fatal("the packet's arrival was not noted")
	}
	if at < before-int64(time.Millisecond) || at > after {
		// The kernel's clock is the wall clock, converted: allow for the
		// two clocks being read a little apart.
		t.Errorf("arrival %d outside [%d, %d]", at, before, after)
	}
	n, addr, err := c.ReadFrom(buf)
	must(t, err)
	if string(buf[:n]) != "not rtp" || addr == nil {
		t.Errorf("second datagram: %q from %v", buf[:n], addr)
	}
}

// fakeClock is a settable nanotime.
type fakeClock struct {
	mu sync.Mutex
	t  int64
}

func (c *fakeClock) now() int64  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) set(t int64) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func tccStream(ssrc uint32) *interceptor.StreamInfo {
	return &interceptor.StreamInfo{SSRC: ssrc, RTPHeaderExtensions: []interceptor.RTPHeaderExtension{{URI: sdp.TransportCCURI, ID: testTCCID}}}
}

// bufferReader reads what pion's SRTP session wrote into a buffer, as the
// start of a stream's interceptor chain does.
func bufferReader(b io.Reader) interceptor.RTPReader {
	return interceptor.RTPReaderFunc(func(p []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, err := b.Read(p)
		return n, a, err
	})
}

// receivedAt decodes a feedback's arrival times (microseconds from its
// reference time) by transport-wide number, and the numbers reported lost.
func receivedAt(t *testing.T, pkts []rtcp.Packet) (map[uint16]int64, []uint16) {
	t.Helper()
	got := map[uint16]int64{}
	var lost []uint16
	for _, p := range pkts {
		fb, ok := p.(*rtcp.TransportLayerCC)
		if !ok {
			t.Fatalf("feedback %T", p)
		}
		// Round trip through the wire format, as the publisher reads it.
		raw, err := fb.Marshal()
		must(t, err)
		var dec rtcp.TransportLayerCC
		must(t, dec.Unmarshal(raw))
		at := int64(dec.ReferenceTime) * 64000
		seq := dec.BaseSequenceNumber
		d := 0
		for _, chunk := range dec.PacketChunks {
			var statuses []uint16
			switch c := chunk.(type) {
			case *rtcp.RunLengthChunk:
				for range c.RunLength {
					statuses = append(statuses, c.PacketStatusSymbol)
				}
			case *rtcp.StatusVectorChunk:
				statuses = c.SymbolList
			}
			for _, s := range statuses {
				if seq == dec.BaseSequenceNumber+dec.PacketStatusCount {
					break
				}
				if s == rtcp.TypeTCCPacketNotReceived {
					lost = append(lost, seq)
				} else {
					at += dec.RecvDeltas[d].Delta
					d++
					if _, dup := got[seq]; dup {
						t.Errorf("transport-wide number %d reported twice", seq)
					}
					got[seq] = at
				}
				seq++
			}
		}
	}
	return got, lost
}

// TestTWCCResponderReportsArrivalNotRead: packets are reported with the
// time they arrived (the SRTP session's write into the buffer, or the
// socket's noted time), however late they are read, in arrival order
// across streams read by different goroutines, each once.
func TestTWCCResponderReportsArrivalNotRead(t *testing.T) {
	clock := &fakeClock{t: 1_000_000_000}
	var sock arrivalTable
	r := newTWCCResponderClock(clock.now, time.Hour)
	r.arrivals = &sock
	defer r.Close()

	a := r.newBuffer(packetio.RTPBufferPacket, 0xa)
	b := r.newBuffer(packetio.RTPBufferPacket, 0xb)
	rtcpBuf := r.newBuffer(packetio.RTCPBufferPacket, 0xa)
	defer rtcpBuf.Close()
	// The first packet arrives before any stream is bound: its number
	// is recorded when it is read, with the time its buffer noted.
	_, err := a.Write(rtpWithTCC(t, 0xa, 100, 0, false))
	must(t, err)
	readA := r.BindRemoteStream(tccStream(0xa), bufferReader(a))
	readB := r.BindRemoteStream(tccStream(0xb), bufferReader(b))
	// Then packets alternate between the streams, 10 ms apart; one came
	// off the socket 4 ms before the SRTP session wrote it.
	ms := int64(time.Millisecond)
	for i := 1; i <= 6; i++ {
		clock.set(1_000_000_000 + int64(i)*10*ms)
		ssrc, buf := uint32(0xa), a
		if i%2 == 0 {
			ssrc, buf = 0xb, b
		}
		seq := uint16(100 + i)
		if i == 3 {
			sock.put(ssrc, seq, clock.now()-4*ms)
		}
		_, err := buf.Write(rtpWithTCC(t, ssrc, seq, uint16(i), i%3 == 0))
		must(t, err)
	}
	// Read much later, stream b first.
	clock.set(1_000_000_000 + 900*ms)
	p := make([]byte, 1500)
	for range 3 {
		_, _, err := readB.Read(p, nil)
		must(t, err)
	}
	for range 4 {
		_, _, err := readA.Read(p, nil)
		must(t, err)
	}
	got, lost := receivedAt(t, r.feedback())
	if len(lost) > 0 || len(got) != 7 {
		t.Fatalf("reported %v, lost %v", got, lost)
	}
	for i := uint16(1); i <= 6; i++ {
		want := int64(10_000)
		if i == 3 {
			want = 6_000
		}
		if i == 4 {
			want = 14_000
		}
		if d := got[i] - got[i-1]; d != want {
			t.Errorf("packet %d arrived %d µs after %d, want %d", i, d, i-1, want)
		}
	}
	// Nothing is reported again.
	if again, _ := receivedAt(t, r.feedback()); len(again) != 0 {
		t.Errorf("reported again: %v", again)
	}
	// The buffers still carry the packets, unchanged, for the engine.
	_, err = rtcpBuf.Write([]byte{0x80, 201, 0, 1, 0, 0, 0, 1})
	must(t, err)
	must(t, a.Close())
	if _, _, ok := r.arrival(0xa, 101); ok {
		t.Error("a closed stream's arrivals are still kept")
	}
}

func TestArrivalLog(t *testing.T) {
	var l arrivalLog
	l.put(5, 1234, false)
	l.put(5+arrivalSlots, 99, true) // the same slot, a newer packet
	if _, _, ok := l.get(5); ok {
		t.Error("an overwritten packet answered")
	}
	if us, rec, ok := l.get(5 + arrivalSlots); !ok || !rec || us != 99 {
		t.Errorf("got %d %v %v", us, rec, ok)
	}
	l.put(65535, arrivalTimeMask, false)
	if us, rec, ok := l.get(65535); !ok || rec || us != arrivalTimeMask {
		t.Errorf("got %d %v %v", us, rec, ok)
	}
}

// tccTally is a client interceptor counting the transport-wide numbers it
// sends and how often the server's feedback reports each received.
type tccTally struct {
	interceptor.NoOp
	mu       sync.Mutex
	sent     map[uint16]bool
	received map[uint16]int
	reports  int
}

func newTCCTally() *tccTally {
	return &tccTally{sent: map[uint16]bool{}, received: map[uint16]int{}}
}

func (c *tccTally) NewInterceptor(string) (interceptor.Interceptor, error) { return c, nil }

func (c *tccTally) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == sdp.TransportCCURI {
			id = uint8(e.ID)
		}
	}
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		ext := h.GetExtension(id)
		numbered := id != 0 && len(ext) == 2
		var tseq uint16
		if numbered {
			tseq = binary.BigEndian.Uint16(ext)
		}
		n, err := w.Write(h, payload, a)
		// A packet counts as sent once it was written: until the
		// connection's SRTP session is ready (after DTLS, which a
		// loaded machine makes late), pion's sender drops what it is
		// given and says so only with 0 bytes written, no error, though
		// the header extension's interceptor numbered it already.
		if numbered && err == nil && n > 0 {
			c.mu.Lock()
			c.sent[tseq] = true
			c.mu.Unlock()
		}
		return n, err
	})
}

func (c *tccTally) BindRTCPReader(r interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err != nil {
			return n, a, err
		}
		pkts, perr := rtcp.Unmarshal(b[:n])
		if perr != nil {
			return n, a, err
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, p := range pkts {
			fb, ok := p.(*rtcp.TransportLayerCC)
			if !ok {
				continue
			}
			c.reports++
			seq := fb.BaseSequenceNumber
			for _, chunk := range fb.PacketChunks {
				var statuses []uint16
				switch ch := chunk.(type) {
				case *rtcp.RunLengthChunk:
					for range ch.RunLength {
						statuses = append(statuses, ch.PacketStatusSymbol)
					}
				case *rtcp.StatusVectorChunk:
					statuses = ch.SymbolList
				}
				for _, st := range statuses {
					if seq == fb.BaseSequenceNumber+fb.PacketStatusCount {
						break
					}
					if st != rtcp.TypeTCCPacketNotReceived {
						c.received[seq]++
					}
					seq++
				}
			}
		}
		return n, a, err
	})
}

// TestPublisherFeedbackReportsEveryPacket: a pion publisher sending
// simulcast and audio gets transport-wide feedback from the engine that
// reports every packet it sent as received (loopback loses nothing), and
// no number it did not send, while its media reaches the engine.
func TestPublisherFeedbackReportsEveryPacket(t *testing.T) {
	checkLeaks(t)
	ctx := testContext(t)
	e := newTestEngine(t)
	r := e.NewRouter("stage")
	tally := newTCCTally()
	tp := startPublisher(t, ctx, r, "alice", pubOpts{rids: []string{"hi", "mid", "low"}, client: clientOpts{tcc: tally}})
	// Feedback goes to the RTCP stream of the SSRC it names, the last
	// packet's: the audio sender's too, which startPublisher does not read.
	for _, s := range tp.pc.GetSenders() {
		if s.Track() != nil && s.Track().Kind() == webrtc.RTPCodecTypeAudio {
			go func() {
				for {
					if _, _, err := s.ReadRTCP(); err != nil {
						return
					}
				}
			}()
		}
	}
	waitFor(t, ctx, "media", func() bool {
		select {
		case <-tp.media:
			return true
		default:
			return false
		}
	})
	var want []uint16
	waitFor(t, ctx, "300 packets sent", func() bool {
		tally.mu.Lock()
		defer tally.mu.Unlock()
		if len(tally.sent) < 300 {
			return false
		}
		for s := range tally.sent {
			want = append(want, s)
		}
		return true
	})
	var missing []uint16
	waitFor(t, ctx, "feedback for every packet sent", func() bool {
		tally.mu.Lock()
		defer tally.mu.Unlock()
		missing = missing[:0]
		for _, s := range want {
			if tally.received[s] == 0 {
				missing = append(missing, s)
			}
		}
		return len(missing) == 0
	})
	tp.halt()
	tally.mu.Lock()
	defer tally.mu.Unlock()
	twice := 0
	for s, n := range tally.received {
		if !tally.sent[s] {
			t.Errorf("feedback reports %d, which was never sent", s)
		}
		if n > 1 {
			twice++
		}
	}
	t.Logf("%d packets sent, %d feedback reports, %d numbers reported received more than once", len(tally.sent), tally.reports, twice)
}
