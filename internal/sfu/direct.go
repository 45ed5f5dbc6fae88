package sfu

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// The engine's own send path to subscribers.
//
// Through pion, every packet to every subscriber passes the track writer,
// the interceptor chain, the SRTP session (a lock and a lookup by SSRC),
// the DTLS transport's mux endpoint, the ICE connection and its selected
// candidate pair (time stamps and counters per packet) before it reaches
// the socket: about 28 % of the write path's CPU, the SRTP and the send
// excluded (docs/performance.md). On the engine's own path a packet is
// encrypted with the connection's SRTP keys and handed to sendto(2) on the
// engine's socket (sendconn_linux.go) directly, when the connection's
// selected ICE pair is UDP on that socket:
//
//   - a subscriber whose down-tracks carry one encoding each
//     (roleFixedSubscriber) needs nothing else of the chain, and its
//     down-tracks write to a directWriter, which skips all of pion's
//     layers;
//   - a subscriber with congestion control (roleSubscriber) keeps its
//     interceptors (the transport-wide numbers and the controller must see
//     every packet), and the innermost of them, directInterceptor, sends
//     what reaches it, skipping pion's SRTP session, mux and ICE.
//
// pion does not expose a connection's SRTP keys, so they are derived as
// pion derives them (RFC 5764 §4.2: the TLS exporter "EXTRACTOR-dtls_srtp"
// over the handshake's master secret and randoms), from what two of pion's
// public DTLS hooks see: the key log (NSS's format: the client random and
// the master secret) and the ServerHello the server sends (the server
// random, the cipher suite whose hash the exporter uses, the SRTP profile
// chosen). The server's hello is only seen when the engine is the DTLS
// server, so these subscribers answer with a=setup:passive (RFC 5763
// allows either); a client that insists on being the server, or a
// handshake whose pieces do not all show up, leaves the connection on
// pion's path. The keys are in place when the handshake completes, before
// pion starts its SRTP session, and the address (the ICE agent's notice of
// the selected pair) a round trip before that, so from the first packet
// that can be delivered on, a stream's packets take the direct path and
// pion's SRTP context, which would start the stream's rollover counter
// afresh, never sees them. (Should the notice come late, the first packets
// go through pion, before any wrap of the sequence number.)

// packetSender is the engine's UDP socket as the direct path uses it.
type packetSender interface {
	WriteToAddrPort(b []byte, to netip.AddrPort) (int, error)
	// WriteSegments sends b as datagrams of seg bytes (the last may be
	// shorter), with one system call where the kernel can.
	WriteSegments(b []byte, seg int, to netip.AddrPort) error
}

// udpSender adapts a *net.UDPConn (when sendConn could not be used).
type udpSender struct {
	c interface {
		WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error)
	}
}

func (u udpSender) WriteToAddrPort(b []byte, to netip.AddrPort) (int, error) {
	return u.c.WriteToUDPAddrPort(b, to)
}

func (u udpSender) WriteSegments(b []byte, seg int, to netip.AddrPort) error {
	return writeEach(u, b, seg, to)
}

// writeEach sends b as datagrams of seg bytes, one system call each: where
// the kernel does not segment.
func writeEach(w interface {
	WriteToAddrPort([]byte, netip.AddrPort) (int, error)
}, b []byte, seg int, to netip.AddrPort) error {
	for len(b) > 0 {
		n := min(seg, len(b))
		if _, err := w.WriteToAddrPort(b[:n], to); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// exporterLabel is the DTLS-SRTP exporter label (RFC 5764 §4.2).
const exporterLabel = "EXTRACTOR-dtls_srtp"

// directConn is one subscriber connection's direct path: the handshake's
// secrets as pion's hooks report them, then the SRTP keys and the address
// to send to.
type directConn struct {
	e *Engine

	mu           sync.Mutex // the hooks run on pion's handshake goroutine
	clientRandom []byte
	masterSecret []byte
	serverRandom []byte
	suite        uint16
	profile      dtls.SRTPProtectionProfile

	// streams are the innermost writers of a roleSubscriber's
	// down-tracks, by media SSRC (directInterceptor), under mu.
	streams map[uint32]*directStream
	// cryptex: the subscriber's offer asked for its header extensions to
	// be encrypted too (RFC 9335), and pion's answer agreed. Set before
	// the handshake starts.
	cryptex bool
	// srtp encrypts every packet of the connection on the direct path,
	// under srtpMu (a subscriber's audio and video are written from two
	// goroutines); nil until the handshake completes. One context for the
	// connection rather than one per stream: its state per SSRC is small,
	// each context's ciphers are not (≈ 2 KiB).
	srtp   atomic.Pointer[srtp.Context]
	srtpMu sync.Mutex
	// addr is where the selected ICE pair sends: nil when that pair is not
	// UDP on the engine's socket (the writers then fall back to pion's).
	addr atomic.Pointer[netip.AddrPort]
}

// srtpKeys are the keys this side encrypts with.
type srtpKeys struct {
	profile   srtp.ProtectionProfile
	key, salt []byte
}

// newDirectConn prepares se (a copy of the subscribers' settings, for one
// connection) so that the connection's handshake reports its secrets.
func (e *Engine) newDirectConn(se *webrtc.SettingEngine) (*directConn, error) {
	c := &directConn{e: e}
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		return nil, err
	}
	se.SetDTLSKeyLogWriter(keyLogWriter{c})
	se.SetDTLSServerHelloMessageHook(func(m handshake.MessageServerHello) handshake.Message {
		c.serverHello(&m)
		return &m
	})
	return c, nil
}

// keyLogWriter receives the key log's lines: "CLIENT_RANDOM <client random>
// <master secret>", both in hex.
type keyLogWriter struct{ c *directConn }

func (w keyLogWriter) Write(line []byte) (int, error) {
	f := bytes.Fields(line)
	if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" {
		return len(line), nil
	}
	cr, err1 := hex.DecodeString(string(f[1]))
	ms, err2 := hex.DecodeString(string(f[2]))
	if err1 == nil && err2 == nil {
		w.c.mu.Lock()
		w.c.clientRandom, w.c.masterSecret = cr, ms
		w.c.mu.Unlock()
	}
	return len(line), nil
}

func (c *directConn) serverHello(m *handshake.MessageServerHello) {
	r := m.Random.MarshalFixed()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.serverRandom = r[:]
	if m.CipherSuiteID != nil {
		c.suite = *m.CipherSuiteID
	}
	c.profile = 0
	for _, ext := range m.Extensions {
		if u, ok := ext.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			c.profile = dtls.SRTPProtectionProfile(u.ProtectionProfiles[0])
		}
	}
}

var errNoSecrets = errors.New("sfu: the handshake's secrets were not seen")

// deriveKeys computes the server's SRTP master key and salt from what the
// hooks saw (RFC 5764 §4.2; RFC 5705's exporter with no context).
func (c *directConn) deriveKeys() (*srtpKeys, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.clientRandom) != handshake.RandomLength || len(c.serverRandom) != handshake.RandomLength || len(c.masterSecret) == 0 || c.profile == 0 {
		return nil, errNoSecrets
	}
	profile := srtp.ProtectionProfile(c.profile)
	keyLen, err := profile.KeyLen()
	if err != nil {
		return nil, err
	}
	saltLen, err := profile.SaltLen()
	if err != nil {
		return nil, err
	}
	seed := make([]byte, 0, len(exporterLabel)+2*handshake.RandomLength)
	seed = append(append(append(seed, exporterLabel...), c.clientRandom...), c.serverRandom...)
	// The client's key, the server's, the client's salt, the server's.
	material, err := prf.PHash(c.masterSecret, seed, 2*(keyLen+saltLen), prfHash(dtls.CipherSuiteID(c.suite)))
	// The master secret is needed no longer: not kept for the
	// connection's life.
	clear(c.masterSecret)
	c.masterSecret = nil
	if err != nil {
		return nil, err
	}
	return &srtpKeys{
		profile: profile,
		key:     material[keyLen : 2*keyLen],
		salt:    material[2*keyLen+saltLen:],
	}, nil
}

// prfHash is the hash of a DTLS 1.2 cipher suite's PRF: SHA-384 for the
// suites named so, SHA-256 for every other suite pion offers (RFC 5246
// §5: TLS 1.2's suites use SHA-256 unless they say otherwise).
func prfHash(id dtls.CipherSuiteID) func() hash.Hash {
	switch id {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return sha512.New384
	}
	return sha256.New
}

// handshakeDone runs when the connection's DTLS handshake has completed,
// before pion starts its SRTP session (DTLSTransport's state handler, with
// the transport's lock held: nothing here may call into the transport).
func (c *directConn) handshakeDone() {
	keys, err := c.deriveKeys()
	var ctx *srtp.Context
	if err == nil {
		var opts []srtp.ContextOption
		if c.cryptex {
			// As pion's own context for what it sends (its
			// DTLSTransport.startSRTP).
			opts = append(opts, srtp.Cryptex(srtp.CryptexModeEnabled))
		}
		ctx, err = srtp.CreateContext(keys.key, keys.salt, keys.profile, opts...)
	}
	if err != nil {
		c.e.log.Debug("sfu: subscriber stays on pion's send path", "reason", err)
		return
	}
	// The address comes from the ICE agent's notice of the selected pair
	// (pairChanged), which precedes the handshake's end by a round trip.
	// It is not asked for here: ICETransport.GetSelectedCandidatePair
	// waits for the ICE gatherer's lock, which a closing connection holds
	// while it waits for a handler that waits for the DTLS transport's lock,
	// held here — a deadlock seen in the tests. Until the notice comes,
	// packets go pion's way.
	c.srtp.Store(ctx)
	c.e.log.Debug("sfu: subscriber on the direct send path", "srtp", keys.profile, "to", c.addr.Load())
}

// pairChanged follows the ICE agent's selected pair: the direct path sends
// only on a UDP pair whose local side is the engine's socket (host
// candidates from the UDP mux all are), to an address given as an IP.
func (c *directConn) pairChanged(pair *webrtc.ICECandidatePair) {
	if pair == nil || pair.Local == nil || pair.Remote == nil ||
		pair.Local.Protocol != webrtc.ICEProtocolUDP || pair.Remote.Protocol != webrtc.ICEProtocolUDP ||
		int(pair.Local.Port) != c.e.udpPort {
		c.addr.Store(nil)
		return
	}
	ip, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil {
		c.addr.Store(nil)
		return
	}
	ap := netip.AddrPortFrom(ip.Unmap(), pair.Remote.Port)
	c.addr.Store(&ap)
}

var errPacketTooLarge = fmt.Errorf("sfu: RTP packet larger than %d bytes", maxPacket-srtpOverhead)

// srtpOverhead bounds what SRTP adds to a packet: the longest
// authentication tag of the profiles pion offers (16 bytes, AES-GCM).
const srtpOverhead = 16

// send marshals, encrypts and sends one packet (HOT PATH: once per packet
// per subscriber), or adds it to batch b when b is not nil. ok is false
// when the packet is pion's to send: the handshake has not completed (pion
// then drops it, as it does every packet before its SRTP session is up),
// the connection stays on pion's path, or its selected pair is not one the
// engine sends on (TCP). A UDP pair that turns into TCP mid-stream hands
// the stream to pion's SRTP context, which starts its rollover counter at
// 0: after 65,536 packets on the direct path the subscriber would no
// longer decrypt them. That switch is rare; the subscriber then
// reconnects.
func (c *directConn) send(h *rtp.Header, payload []byte, b *sendBatch) (n int, ok bool, err error) {
	to := c.addr.Load()
	if to == nil {
		return 0, false, nil
	}
	ctx := c.srtp.Load()
	if ctx == nil {
		return 0, false, nil
	}
	if b != nil {
		n, err := b.add(c, ctx, *to, h, payload)
		return n, true, err
	}
	buf := scratchPool.Get().(*[maxPacket]byte)
	defer scratchPool.Put(buf)
	out, err := c.encrypt(ctx, buf[:], h, payload)
	if err != nil {
		return 0, true, err
	}
	if _, err := c.e.send.WriteToAddrPort(out, *to); err != nil {
		return 0, true, err
	}
	return len(out), true, nil
}

// encrypt marshals the packet into dst (at least maxPacket long) and
// encrypts it there, returning the SRTP packet.
func (c *directConn) encrypt(ctx *srtp.Context, dst []byte, h *rtp.Header, payload []byte) ([]byte, error) {
	hl, err := h.MarshalTo(dst)
	if err != nil {
		return nil, err
	}
	size := hl + len(payload) + int(h.PaddingSize)
	if size+srtpOverhead > maxPacket {
		return nil, errPacketTooLarge
	}
	copy(dst[hl:], payload)
	if h.Padding && h.PaddingSize > 0 {
		// RFC 3550 §5.1: padding octets, the last of which counts them.
		pad := dst[hl+len(payload) : size]
		clear(pad)
		pad[len(pad)-1] = h.PaddingSize
	}
	// Encrypted in place: the context writes the packet and its tag over
	// the plaintext (pion's session does the same).
	c.srtpMu.Lock()
	out, err := ctx.EncryptRTP(dst[:size], dst[:size], h)
	c.srtpMu.Unlock()
	return out, err
}

// Batched sends. A publisher's packets come in bursts (a frame's packets
// back to back, a keyframe's dozens), and the layer's forwarder takes what
// has queued up to maxBatch at a time (uptrack.go). Each subscriber then
// gets that run of packets with one sendmsg(2) and UDP generic
// segmentation (sendconn_linux.go): the kernel routes, builds and delivers
// the datagrams together, and wakes the receiver once. On loopback that
// took the sending thread from 4.8 to 1.4 µs a packet for runs of six
// (docs/performance.md). Nothing waits to make a batch: what is queued when
// the forwarder comes back is what it takes.

// maxBatch is the most packets a forwarder takes from its queue at once,
// and so the most one subscriber gets in one send (the kernel allows 64
// segments and 64 KiB).
const maxBatch = 16

// sendBatch gathers one subscriber's encrypted packets for one send with
// UDP segmentation: datagrams of one size, the last of which may be
// shorter (the kernel's rule). One is used per fan-out of a batch (pooled),
// for one down-track at a time; what cannot join the run sends the run
// first.
type sendBatch struct {
	buf   [maxBatch * maxPacket]byte
	n     int // bytes held
	seg   int // the run's datagram size
	count int
	short bool // the last datagram is shorter than seg: the run is closed
	to    netip.AddrPort
	c     *directConn
}

var batchPool = sync.Pool{New: func() any { return new(sendBatch) }}

// add encrypts a packet into the batch.
func (b *sendBatch) add(c *directConn, ctx *srtp.Context, to netip.AddrPort, h *rtp.Header, payload []byte) (int, error) {
	if b.count == maxBatch || (b.count > 0 && (b.c != c || b.to != to)) {
		if err := b.flush(); err != nil {
			return 0, err
		}
	}
	out, err := c.encrypt(ctx, b.buf[b.n:b.n+maxPacket], h, payload)
	if err != nil {
		return 0, err
	}
	size := len(out)
	if b.count > 0 && (b.short || size > b.seg) {
		// It cannot be in this run: send the run, and start the next
		// with this packet.
		held := b.buf[b.n : b.n+size]
		if err := b.flush(); err != nil {
			return 0, err
		}
		copy(b.buf[:size], held)
	}
	if b.count == 0 {
		b.seg, b.short, b.to, b.c = size, false, to, c
	} else if size < b.seg {
		b.short = true
	}
	b.n += size
	b.count++
	return size, nil
}

// flush sends what the batch holds.
func (b *sendBatch) flush() error {
	if b.count == 0 {
		return nil
	}
	err := b.c.e.send.WriteSegments(b.buf[:b.n], b.seg, b.to)
	b.n, b.count, b.c = 0, 0, nil
	return err
}

// directWriter is the writer of a roleFixedSubscriber's down-track: the
// direct path, or fallback for what the direct path does not send (pion's
// track writer; a lean connection's ICE-TCP writer).
type directWriter struct {
	c        *directConn
	fallback webrtc.TrackLocalWriter
	// batch, while the down-track writes a batch of packets (under its
	// lock), gathers them for one send (downTrack.writeBatch).
	batch *sendBatch
}

func (w *directWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	n, ok, err := w.c.send(h, payload, w.batch)
	if !ok {
		return w.fallback.WriteRTP(h, payload)
	}
	if err == nil {
		w.c.e.stats.forwarded(h, payload) // the stats interceptor is skipped here
	}
	return n, err
}

// Write sends a marshalled RTP packet.
func (w *directWriter) Write(b []byte) (int, error) { return writeMarshalled(w, b) }

// writeMarshalled is a track writer's Write, in terms of its WriteRTP
// (nothing in the engine writes marshalled packets; pion's interface has
// it).
func writeMarshalled(w interface {
	WriteRTP(*rtp.Header, []byte) (int, error)
}, b []byte) (int, error) {
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		return 0, err
	}
	return w.WriteRTP(&p.Header, p.Payload)
}

// directInterceptor is the innermost interceptor of a roleSubscriber's
// connection: the packets the interceptors above it (the transport-wide
// numbers, the congestion controller, the stats) have seen go out on the
// direct path.
type directInterceptor struct {
	interceptor.NoOp
	c *directConn
}

type directFactory struct{ c *directConn }

func (f directFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &directInterceptor{c: f.c}, nil
}

// BindLocalStream implements interceptor.Interceptor.
func (i *directInterceptor) BindLocalStream(info *interceptor.StreamInfo, writer interceptor.RTPWriter) interceptor.RTPWriter {
	s := &directStream{c: i.c, next: writer}
	i.c.mu.Lock()
	if i.c.streams == nil {
		i.c.streams = map[uint32]*directStream{}
	}
	i.c.streams[info.SSRC] = s
	i.c.mu.Unlock()
	return s
}

// directStream is the innermost writer of one of a roleSubscriber's
// down-tracks (by its media SSRC; its RTX packets pass it too).
type directStream struct {
	c    *directConn
	next interceptor.RTPWriter // pion's SRTP, for what the direct path does not send
	// count: nothing above counts what is sent (a lean connection's
	// chain has no stats interceptor).
	count bool
	// batch gathers the packets while the down-track writes a batch
	// (downTrack.writeBatch, under the down-track's lock, as every write
	// of the stream).
	batch *sendBatch
}

func (s *directStream) Write(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
	if n, ok, err := s.c.send(h, payload, s.batch); ok {
		if err == nil && s.count {
			s.c.e.stats.forwarded(h, payload)
		}
		return n, err
	}
	return s.next.Write(h, payload, a)
}

// stream is the innermost writer of the down-track sending on ssrc, nil
// if the connection has none.
func (c *directConn) stream(ssrc uint32) *directStream {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[ssrc]
}
