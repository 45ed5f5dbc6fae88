package sfu

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/fingerprint"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/stun/v4"
	"github.com/pion/transport/v5/deadline"
	"github.com/pion/webrtc/v4"
)

// Lean subscriber connections: the engine's own, without pion's peer
// connection.
//
// A subscriber's connection only sends media and receives a few RTCP
// packets a second, yet pion builds for it what a general peer connection
// needs: an ICE agent with its candidates' read loops, a connection mux,
// DTLS, SRTP and SRTCP sessions, each with a read loop of its own and an
// 8 KiB buffer — 15 goroutines and about 130 KiB a subscriber
// (docs/performance.md). A lean connection is the same thing on the wire
// with state only:
//
//   - ICE-lite (RFC 8445 §2.5): the answer says a=ice-lite, the client
//     checks and nominates, and the engine's UDP read loop answers its
//     binding requests (authenticated with the connection's password) from
//     the engine's socket. The client's requests double as consent
//     (RFC 7675): a connection that goes silent for leanSilenceTimeout
//     fails.
//   - DTLS (pion/dtls, the engine as server: a=setup:passive) over an
//     adapter fed by the same read loop, only until the client has shown
//     its side of the handshake is complete (its first SRTCP packet, which
//     it can only send with the keys the handshake gave it): then the DTLS
//     connection is dropped without a word on the wire, and with it its
//     goroutines and buffers. The client's later DTLS records can only be
//     an alert — its close_notify when it hangs up — and are taken as such.
//   - SRTP out on the direct send path (direct.go); SRTCP in decrypted and
//     handled on the read loop (feedback.go).
//   - ICE-TCP (RFC 6544) through the engine's TCP port, which it shares
//     with pion's connections (tcpsplit.go).
//
// Subscribers whose offer bundles its media with a certificate fingerprint
// and no data channel take this path; those of a simulcast publisher
// (roleSubscriber) only when they offer transport-wide feedback: their
// down-tracks then write through the engine's transport-wide numbering and
// its congestion controller (leanBind, bwe.go), which the read loop feeds
// the client's feedback. The rest keep pion's peer connection.

// leanSilenceTimeout is how long a lean connection may go without an
// authenticated binding request before it fails: browsers check the
// selected pair every 2.5 s or so and pion every 2 s, so this is several
// missed checks in a row, about the six seconds pion's connections take.
var leanSilenceTimeout = 8 * time.Second

// leanHandshakeTimeout bounds how long a lean connection may take to
// complete ICE and DTLS after its answer.
var leanHandshakeTimeout = 20 * time.Second

// leanDTLSLinger bounds how long the DTLS connection is kept after the
// handshake when the client sends no RTCP to prove it finished too: long
// enough for the retransmissions of a lossy handshake (pion and browsers
// give up after about a minute).
var leanDTLSLinger = 60 * time.Second

// leanTable finds the lean connection a datagram on the engine's UDP socket
// belongs to: binding requests by the ufrag they name, everything else by
// the address an authenticated request came from.
type leanTable struct {
	n       atomic.Int32 // connections in the table: none, nothing to look up
	mu      sync.RWMutex
	byUfrag map[string]*leanConn
	byAddr  map[netip.AddrPort]*leanConn
}

func (t *leanTable) add(c *leanConn) {
	t.mu.Lock()
	if t.byUfrag == nil {
		t.byUfrag = map[string]*leanConn{}
		t.byAddr = map[netip.AddrPort]*leanConn{}
	}
	t.byUfrag[c.ufrag] = c
	t.mu.Unlock()
	t.n.Add(1)
}

func (t *leanTable) remove(c *leanConn) {
	t.mu.Lock()
	if t.byUfrag[c.ufrag] == c {
		delete(t.byUfrag, c.ufrag)
		t.n.Add(-1)
	}
	for _, a := range c.addrs {
		if t.byAddr[a] == c {
			delete(t.byAddr, a)
		}
	}
	c.addrs = nil
	t.mu.Unlock()
}

// maxLeanAddrs bounds the addresses one connection's checks may come from
// (a client's host, reflexive and relayed candidates).
const maxLeanAddrs = 8

// learn maps an address an authenticated request came from to c, and
// says whether it is new to c.
func (t *leanTable) learn(c *leanConn, from netip.AddrPort) bool {
	t.mu.RLock()
	o := t.byAddr[from]
	t.mu.RUnlock()
	if o == c {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byUfrag[c.ufrag] != c || len(c.addrs) >= maxLeanAddrs {
		return false
	}
	// An address moves to the connection that last authenticated from it
	// (a client's port reused by its next connection).
	t.byAddr[from] = c
	c.addrs = append(c.addrs, from)
	return true
}

// divert takes the datagram b from the socket if it is a lean
// connection's, and handles it (on the socket's read goroutine: nothing
// here waits). Everything else is pion's.
func (t *leanTable) divert(b []byte, from netip.AddrPort) bool {
	if t.n.Load() == 0 || len(b) == 0 {
		return false
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	kind := leanKind(b)
	if kind == leanSTUN {
		if !stun.IsMessage(b) {
			return false
		}
		if t.stun(b, from) {
			return true
		}
		// The answers to the engine's own checks (binding): nothing to
		// do with them, and nothing for pion.
		return t.byAddress(from) != nil
	}
	if kind == leanOther {
		return false
	}
	c := t.byAddress(from)
	if c == nil {
		return false
	}
	c.receive(b, kind, func() *leanPath { return &leanPath{udp: from} })
	return true
}

// What a lean connection's datagram is, by its first bytes (RFC 7983).
type leanPacket uint8

const (
	leanOther leanPacket = iota
	leanSTUN
	leanDTLS
	leanRTP // a subscriber sends none: dropped
	leanRTCP
)

func leanKind(b []byte) leanPacket {
	switch {
	case len(b) == 0:
		return leanOther
	case b[0] < 4:
		return leanSTUN
	case b[0] >= 20 && b[0] < 64:
		return leanDTLS
	case b[0] >= 128 && b[0] < 192:
		if len(b) > 1 && b[1] >= 192 && b[1] <= 223 {
			return leanRTCP
		}
		return leanRTP
	}
	return leanOther
}

func (t *leanTable) byAddress(a netip.AddrPort) *leanConn {
	t.mu.RLock()
	c := t.byAddr[a]
	t.mu.RUnlock()
	return c
}

// stun answers a binding request for a lean connection.
func (t *leanTable) stun(b []byte, from netip.AddrPort) bool {
	m, local, ok := decodeBinding(b)
	if !ok {
		return false
	}
	c := t.byLocalUfrag(local)
	if c == nil {
		return false
	}
	c.binding(m, &leanPath{udp: from})
	return true
}

func (t *leanTable) byLocalUfrag(ufrag string) *leanConn {
	t.mu.RLock()
	c := t.byUfrag[ufrag]
	t.mu.RUnlock()
	return c
}

// decodeBinding decodes a STUN binding request (a copy of b) and the
// ufrag of the side it is addressed to (USERNAME's "<ours>:<theirs>").
func decodeBinding(b []byte) (*stun.Message, string, bool) {
	m := &stun.Message{Raw: append([]byte(nil), b...)}
	if err := m.Decode(); err != nil || m.Type != stun.BindingRequest {
		return nil, "", false
	}
	var u stun.Username
	if err := u.GetFrom(m); err != nil {
		return nil, "", false
	}
	local, _, _ := strings.Cut(string(u), ":")
	return m, local, true
}

// leanPath is a way to a lean connection's client: an address on the
// engine's UDP socket, or an ICE-TCP connection (RFC 6544) to its TCP
// port.
type leanPath struct {
	udp netip.AddrPort
	tcp *leanTCP // nil: UDP
}

func (p *leanPath) send(e *Engine, b []byte) error {
	if p.tcp != nil {
		p.tcp.send(b)
		return nil
	}
	_, err := e.send.WriteToAddrPort(b, p.udp)
	return err
}

func (p *leanPath) addr() net.Addr {
	if p.tcp != nil {
		return p.tcp.fc.RemoteAddr()
	}
	return net.UDPAddrFromAddrPort(p.udp)
}

// leanConn is one lean subscriber connection.
type leanConn struct {
	e      *Engine
	sub    *Subscriber
	direct *directConn // the send path: SRTP keys and address

	stamper     *twccStamper // the transport-wide numbers, with congestion control
	ufrag, pwd  string       // the engine's side of ICE
	remoteUfrag string       // the client's, for the engine's checks
	remotePwd   string
	cert        tls.Certificate // the one whose fingerprint the answer gave
	fingerprint remoteFingerprint
	addrs       []netip.AddrPort // learnt (leanTable.learn), under the table's lock

	lastCheck atomic.Int64 // nanotime of the last authenticated binding request
	// media is the path the client nominated last (or the handshake's):
	// over UDP the direct path's address is the same; over TCP the direct
	// path has none and its writers fall back to leanTCPWriter.
	media atomic.Pointer[leanPath]

	tcpMu sync.Mutex
	tcps  []*framedConn // the client's ICE-TCP connections

	// The DTLS handshake, until retired.
	dtlsMu   sync.Mutex
	dtls     *dtls.Conn
	adapter  *leanPacketConn
	retired  atomic.Bool // the DTLS connection is gone (after the handshake)
	finished atomic.Bool // handshake complete: keys set

	// remote decrypts the client's SRTCP, under rtcpMu (the read loop and,
	// for ICE-TCP, a connection's goroutine).
	rtcpMu sync.Mutex
	remote *srtp.Context

	timer  *time.Timer // watch, from start on
	closed atomic.Bool
}

// remoteFingerprint is the client's certificate fingerprint from its offer
// (RFC 8122).
type remoteFingerprint struct{ algorithm, value string }

func newICECredential(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// newLeanConn prepares a lean connection for subscriber s; start makes
// it reachable.
func (e *Engine) newLeanConn(s *Subscriber, o *leanOffer, direct *directConn, cert tls.Certificate) *leanConn {
	c := &leanConn{
		e:           e,
		sub:         s,
		cert:        cert,
		direct:      direct,
		ufrag:       newICECredential(16),
		pwd:         newICECredential(32),
		remoteUfrag: o.ufrag,
		remotePwd:   o.pwd,
		fingerprint: o.fingerprint,
	}
	c.adapter = newLeanPacketConn(c)
	if s.est != nil {
		c.stamper = &twccStamper{}
	}
	c.lastCheck.Store(nanotime())
	// Made now (and armed by start) so that a close racing the start
	// always finds it.
	c.timer = time.AfterFunc(time.Hour, c.watch)
	c.timer.Stop()
	return c
}

// start makes the connection reachable and waits for its client.
func (c *leanConn) start() {
	c.e.lean.add(c)
	c.timer.Reset(leanSilenceTimeout / 2)
	if c.closed.Load() { // closed before it started: nothing may remain
		c.e.lean.remove(c)
		c.timer.Stop()
	}
}

// watch fails the connection when its client has gone silent, or has not
// completed the handshake in time.
func (c *leanConn) watch() {
	if c.closed.Load() {
		return
	}
	silent := time.Duration(nanotime() - c.lastCheck.Load())
	if silent > leanSilenceTimeout || (!c.finished.Load() && time.Duration(nanotime()-c.sub.created) > leanHandshakeTimeout) {
		c.sub.close(ErrConnectionFailed, false)
		return
	}
	c.timer.Reset(leanSilenceTimeout / 2)
}

// binding answers an authenticated binding request and follows the
// client's nomination.
func (c *leanConn) binding(m *stun.Message, path *leanPath) {
	if c.closed.Load() {
		return
	}
	if err := stun.NewShortTermIntegrity(c.pwd).Check(m); err != nil {
		return
	}
	c.lastCheck.Store(nanotime())
	var mapped stun.XORMappedAddress
	isNew := false
	if path.tcp == nil {
		isNew = c.e.lean.learn(c, path.udp)
		mapped = stun.XORMappedAddress{IP: path.udp.Addr().AsSlice(), Port: int(path.udp.Port())}
	} else if a, ok := path.tcp.fc.RemoteAddr().(*net.TCPAddr); ok {
		isNew = !path.tcp.checked.Swap(true)
		mapped = stun.XORMappedAddress{IP: a.IP, Port: a.Port}
	}
	resp, err := stun.Build(stun.NewTransactionIDSetter(m.TransactionID), stun.BindingSuccess,
		&mapped, stun.NewShortTermIntegrity(c.pwd), stun.Fingerprint)
	if err != nil {
		return
	}
	_ = path.send(c.e, resp.Raw)
	if m.Contains(stun.AttrUseCandidate) {
		// The client's choice (it is the controlling agent: the engine is
		// lite). Media goes where its latest nomination came from.
		c.useMediaPath(path)
	} else if isNew {
		c.check(path)
	}
}

// check sends the client one binding request on a path its first check
// came from, as a full agent's triggered check would (RFC 8445 §7.3.1.4).
// A lite agent need not; but a controlling agent that sees the pair work
// both ways nominates it at once instead of at its next round of checks:
// pion's, 200 ms later, which was the whole of its clients' join time on
// loopback. The answer is dropped (divert).
func (c *leanConn) check(path *leanPath) {
	if c.remoteUfrag == "" || c.remotePwd == "" {
		return
	}
	req, err := stun.Build(stun.BindingRequest, stun.TransactionID,
		stun.NewUsername(c.remoteUfrag+":"+c.ufrag),
		ice.AttrControlled(c.tieBreaker()),
		ice.PriorityAttr(126<<24|65535<<8|255),
		stun.NewShortTermIntegrity(c.remotePwd), stun.Fingerprint)
	if err == nil {
		_ = path.send(c.e, req.Raw)
	}
}

// tieBreaker is the ICE-CONTROLLED attribute's value: any; the engine is
// never the controlling agent, so no role conflict can arise from it.
func (c *leanConn) tieBreaker() uint64 { return uint64(randUint32()) }

// useMediaPath sends media on path from now on.
func (c *leanConn) useMediaPath(path *leanPath) {
	if cur := c.media.Load(); cur != nil && *cur == *path {
		return
	}
	c.media.Store(path)
	if path.tcp == nil {
		a := path.udp
		c.direct.addr.Store(&a)
	} else {
		c.direct.addr.Store(nil)
	}
}

// dtlsIn passes a DTLS record to the handshake. Once the handshake is
// complete, an alert record can only be the client closing (its
// close_notify, or a fatal alert): nobody reads the DTLS connection for
// it, so it is taken here.
func (c *leanConn) dtlsIn(b []byte, from *leanPath) {
	if c.finished.Load() && b[0] == 21 {
		c.sub.close(ErrConnectionClosed, false)
		return
	}
	if !c.retired.Load() {
		c.adapter.push(b, from)
	}
}

// handshake runs the DTLS server's handshake, sets the SRTP keys, and
// tells the subscriber it is connected. It runs on its own goroutine,
// started when the client's first DTLS record arrives.
func (c *leanConn) handshake(first *leanPath) {
	conn, err := dtls.ServerWithOptions(c.adapter, first.addr(),
		dtls.WithCertificates(c.cert),
		dtls.WithSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80),
		dtls.WithExtendedMasterSecret(dtls.RequestExtendedMasterSecret),
		dtls.WithClientAuth(dtls.RequireAnyClientCert),
		dtls.WithInsecureSkipVerify(true), // self-signed: the fingerprint is checked instead
		dtls.WithVerifyPeerCertificate(func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 {
				return errNoClientCertificate
			}
			return c.fingerprint.check(raw[0])
		}),
		dtls.WithLoggerFactory(pionLogs{log: c.e.log}),
	)
	if err != nil {
		c.sub.close(ErrConnectionFailed, false)
		return
	}
	c.dtlsMu.Lock()
	c.dtls = conn
	c.dtlsMu.Unlock()
	if c.closed.Load() {
		_ = conn.Close()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), leanHandshakeTimeout)
	err = conn.HandshakeContext(ctx)
	cancel()
	if err == nil {
		err = c.setKeys(conn)
	}
	if err != nil {
		c.e.log.Debug("sfu: lean subscriber's handshake failed", "subscriber", c.sub.id, "err", err)
		c.sub.close(ErrConnectionFailed, false)
		return
	}
	if c.media.Load() == nil {
		// No nomination seen (yet): the handshake's own path.
		c.useMediaPath(first)
	}
	c.finished.Store(true)
	c.e.stats.subJoin.observe(joinBounds, time.Duration(nanotime()-c.sub.created).Seconds())
	c.sub.onConnected()
	time.AfterFunc(leanDTLSLinger, c.retire)
}

var errNoClientCertificate = errors.New("sfu: the client sent no DTLS certificate")

// setKeys derives both directions' SRTP keys (RFC 5764 §4.2).
func (c *leanConn) setKeys(conn *dtls.Conn) error {
	p, ok := conn.SelectedSRTPProtectionProfile()
	if !ok {
		return errors.New("sfu: no SRTP profile negotiated")
	}
	profile := srtp.ProtectionProfile(p)
	keyLen, err := profile.KeyLen()
	if err != nil {
		return err
	}
	saltLen, err := profile.SaltLen()
	if err != nil {
		return err
	}
	st, ok := conn.ConnectionState()
	if !ok {
		return errors.New("sfu: no DTLS state")
	}
	m, err := st.ExportKeyingMaterial(exporterLabel, nil, 2*(keyLen+saltLen))
	if err != nil {
		return err
	}
	clientKey, serverKey := m[:keyLen], m[keyLen:2*keyLen]
	clientSalt, serverSalt := m[2*keyLen:2*keyLen+saltLen], m[2*keyLen+saltLen:]
	var opts []srtp.ContextOption
	if c.direct.cryptex {
		opts = append(opts, srtp.Cryptex(srtp.CryptexModeEnabled))
	}
	local, err := srtp.CreateContext(serverKey, serverSalt, profile, opts...)
	if err != nil {
		return err
	}
	remote, err := srtp.CreateContext(clientKey, clientSalt, profile, opts...)
	if err != nil {
		return err
	}
	c.rtcpMu.Lock()
	c.remote = remote
	c.rtcpMu.Unlock()
	c.direct.srtp.Store(local)
	return nil
}

// retire drops the DTLS connection once the handshake is over on both
// sides. Nothing is sent: the adapter is closed first, so the
// close_notify pion's Close writes goes nowhere.
func (c *leanConn) retire() {
	if !c.finished.Load() || c.retired.Swap(true) {
		return
	}
	c.adapter.close()
	c.dtlsMu.Lock()
	conn := c.dtls
	c.dtls = nil
	c.dtlsMu.Unlock()
	if conn != nil {
		go func() { _ = conn.Close() }() // waits for pion's loops to end
	}
}

// handleRTCP decrypts and acts on one SRTCP packet from the client.
func (c *leanConn) handleRTCP(b []byte) {
	buf := scratchPool.Get().(*[maxPacket]byte)
	defer scratchPool.Put(buf)
	if len(b) > len(buf) {
		return
	}
	c.rtcpMu.Lock()
	if c.remote == nil {
		c.rtcpMu.Unlock()
		return
	}
	plain, err := c.remote.DecryptRTCP(buf[:0], b, nil)
	c.rtcpMu.Unlock()
	if err != nil {
		return
	}
	if !c.retired.Load() && c.finished.Load() {
		// The client had the keys: its handshake is complete.
		go c.retire()
	}
	pkts, err := rtcp.Unmarshal(plain)
	if err != nil {
		return
	}
	c.e.stats.countRTCP(pkts, &c.e.stats.nacksRecv, &c.e.stats.keyframesRecv, &c.e.stats.downLoss)
	if est := c.sub.est; est != nil {
		// It takes the transport-wide feedback. This runs on the socket's
		// read loop, which pion's connections spread over their own SRTCP
		// goroutines; the engine's controller takes one pass over the
		// feedback's packets.
		_ = est.WriteRTCP(pkts, nil)
	}
	for _, d := range c.sub.downs {
		d.handleRTCPPackets(pkts)
	}
}

// writeRTCP encrypts and sends RTCP to the client (sender reports).
func (c *leanConn) writeRTCP(pkts []rtcp.Packet) error {
	to := c.media.Load()
	ctx := c.direct.srtp.Load()
	if to == nil || ctx == nil {
		return nil
	}
	raw, err := rtcp.Marshal(pkts)
	if err != nil {
		return err
	}
	buf := scratchPool.Get().(*[maxPacket]byte)
	defer scratchPool.Put(buf)
	c.direct.srtpMu.Lock()
	out, err := ctx.EncryptRTCP(buf[:0], raw, nil)
	c.direct.srtpMu.Unlock()
	if err != nil {
		return err
	}
	return to.send(c.e, out)
}

// leanTCPWriter sends a lean connection's media over ICE-TCP: the direct
// path's writers fall back to it when the client's path is TCP.
type leanTCPWriter struct{ c *leanConn }

func (w leanTCPWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	path := w.c.media.Load()
	ctx := w.c.direct.srtp.Load()
	if path == nil || path.tcp == nil || ctx == nil {
		return 0, nil // not up yet: dropped
	}
	buf := scratchPool.Get().(*[maxPacket]byte)
	defer scratchPool.Put(buf)
	out, err := w.c.direct.encrypt(ctx, buf[:], h, payload)
	if err != nil {
		return 0, err
	}
	path.tcp.send(out)
	w.c.e.stats.forwarded(h, payload)
	return len(out), nil
}

// leanTCPStream is leanTCPWriter at the end of an interceptor chain.
type leanTCPStream struct{ c *leanConn }

func (s leanTCPStream) Write(h *rtp.Header, payload []byte, _ interceptor.Attributes) (int, error) {
	return leanTCPWriter(s).WriteRTP(h, payload)
}

func (w leanTCPWriter) Write(b []byte) (int, error) { return writeMarshalled(w, b) }

// claimsTCPUfrag tells the ICE-TCP port's splitter (tcpsplit.go) which
// connections are lean connections'.
func (e *Engine) claimsTCPUfrag(ufrag string) bool { return e.lean.byLocalUfrag(ufrag) != nil }

// takeTCP takes an ICE-TCP connection a lean connection's client opened,
// with its first packet (a binding request), and reads it on a goroutine
// of its own for as long as it lasts: only clients that cannot use UDP
// have one.
func (e *Engine) takeTCP(ufrag string, fc *framedConn, first []byte) {
	c := e.lean.byLocalUfrag(ufrag)
	if c == nil || !c.addTCP(fc) {
		_ = fc.Close()
		return
	}
	go c.readTCP(fc, first)
}

func (c *leanConn) addTCP(fc *framedConn) bool {
	c.tcpMu.Lock()
	defer c.tcpMu.Unlock()
	if c.closed.Load() || len(c.tcps) >= maxLeanAddrs {
		return false
	}
	c.tcps = append(c.tcps, fc)
	return true
}

func (c *leanConn) readTCP(fc *framedConn, first []byte) {
	out := newLeanTCP(fc)
	defer out.close()
	path := &leanPath{tcp: out}
	at := func() *leanPath { return path }
	c.receive(first, leanKind(first), at)
	buf := make([]byte, maxPacket)
	for {
		n, err := fc.ReadPacket(buf)
		if err != nil {
			break
		}
		c.receive(buf[:n], leanKind(buf[:n]), at)
	}
	_ = fc.Close()
	if cur := c.media.Load(); cur != nil && cur.tcp == out {
		// The connection media went on is gone: so is the client.
		c.sub.close(ErrConnectionClosed, false)
	}
}

// leanTCP sends on one of a lean connection's ICE-TCP connections from a
// goroutine of its own, through a bounded queue: the fan-out must never
// wait for a subscriber whose TCP window is full (what does not fit is
// dropped, as a congested UDP path would; NACKs repair it).
type leanTCP struct {
	fc      *framedConn
	checked atomic.Bool // the engine's check sent (leanConn.check)
	q       chan []byte
	done    chan struct{}
	once    sync.Once
}

// leanTCPQueue is how many packets may wait for a TCP connection: about
// a second of a 1.5 Mbit/s video.
const leanTCPQueue = 128

func newLeanTCP(fc *framedConn) *leanTCP {
	t := &leanTCP{fc: fc, q: make(chan []byte, leanTCPQueue), done: make(chan struct{})}
	go t.run()
	return t
}

func (t *leanTCP) run() {
	for {
		select {
		case b := <-t.q:
			if t.fc.WritePacket(b) != nil {
				t.close()
				return
			}
		case <-t.done:
			return
		}
	}
}

// send queues a copy of b.
func (t *leanTCP) send(b []byte) {
	select {
	case <-t.done:
		return
	default:
	}
	select {
	case t.q <- append([]byte(nil), b...):
	default:
	}
}

func (t *leanTCP) close() {
	t.once.Do(func() {
		close(t.done)
		_ = t.fc.Close()
	})
}

// receive handles one packet of kind from the client; path is where it
// came from, made only for the few packets that keep it (binding
// requests, DTLS).
func (c *leanConn) receive(b []byte, kind leanPacket, path func() *leanPath) {
	switch kind {
	case leanSTUN:
		if m, local, ok := decodeBinding(b); ok && local == c.ufrag {
			c.binding(m, path())
		}
	case leanDTLS:
		c.dtlsIn(b, path())
	case leanRTCP:
		c.handleRTCP(b)
	}
}

// close ends the connection: out of the table, the handshake (if any)
// stopped. graceful sends the client a close_notify while the DTLS
// connection is still there; after it has been retired the client learns
// from the signalling and from its checks going unanswered.
func (c *leanConn) close(graceful bool) {
	if c.closed.Swap(true) {
		return
	}
	c.timer.Stop()
	c.e.lean.remove(c)
	c.dtlsMu.Lock()
	conn := c.dtls
	c.dtls = nil
	c.dtlsMu.Unlock()
	if !graceful {
		c.adapter.close() // nothing more on the wire
	}
	if conn != nil {
		_ = conn.Close()
	}
	c.adapter.close()
	c.tcpMu.Lock()
	for _, fc := range c.tcps {
		_ = fc.Close()
	}
	c.tcps = nil
	c.tcpMu.Unlock()
}

// leanPacketConn is what pion's DTLS reads and writes: records the read
// loop diverts, sends on the engine's socket.
type leanPacketConn struct {
	c       *leanConn
	in      chan leanDatagram
	done    chan struct{}
	once    sync.Once
	started atomic.Bool
	dl      *deadline.Deadline
	peer    atomic.Pointer[leanPath] // where DTLS records go
	local   net.Addr
}

type leanDatagram struct {
	b    []byte
	from *leanPath
}

// leanDTLSQueue is how many records may wait for the handshake's reader: a
// flight is a handful.
const leanDTLSQueue = 16

func newLeanPacketConn(c *leanConn) *leanPacketConn {
	return &leanPacketConn{c: c, in: make(chan leanDatagram, leanDTLSQueue), done: make(chan struct{}), dl: deadline.New(), local: c.e.UDPAddr()}
}

// push queues a record (copied: b is the read loop's); the first starts
// the handshake.
func (p *leanPacketConn) push(b []byte, from *leanPath) {
	p.peer.Store(from)
	select {
	case <-p.done:
		return
	default:
	}
	select {
	case p.in <- leanDatagram{b: append([]byte(nil), b...), from: from}:
	default: // the handshake is behind: DTLS retransmits
	}
	if !p.started.Swap(true) {
		go p.c.handshake(from)
	}
}

func (p *leanPacketConn) close() {
	p.once.Do(func() { close(p.done) })
}

func (p *leanPacketConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case d := <-p.in:
		return copy(b, d.b), d.from.addr(), nil
	case <-p.done:
		return 0, nil, net.ErrClosed
	case <-p.dl.Done():
		return 0, nil, errLeanTimeout
	}
}

func (p *leanPacketConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	select {
	case <-p.done:
		return len(b), nil // retired or closing: nothing more is sent
	default:
	}
	to := p.peer.Load()
	if to == nil {
		return 0, net.ErrClosed
	}
	if err := to.send(p.c.e, b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (p *leanPacketConn) Close() error                  { p.close(); return nil }
func (p *leanPacketConn) LocalAddr() net.Addr           { return p.local }
func (p *leanPacketConn) SetDeadline(t time.Time) error { p.dl.Set(t); return nil }
func (p *leanPacketConn) SetReadDeadline(t time.Time) error {
	p.dl.Set(t)
	return nil
}
func (p *leanPacketConn) SetWriteDeadline(time.Time) error { return nil }

// errLeanTimeout is the adapter's read deadline passing (a net.Error, as
// pion's DTLS expects).
var errLeanTimeout net.Error = leanTimeout{}

type leanTimeout struct{}

func (leanTimeout) Error() string   { return "sfu: lean DTLS read deadline" }
func (leanTimeout) Timeout() bool   { return true }
func (leanTimeout) Temporary() bool { return true }

// tlsCertificate is the engine's DTLS certificate as pion's DTLS takes it.
func tlsCertificate(c webrtc.Certificate) (tls.Certificate, error) {
	pem, err := c.PEM()
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair([]byte(pem), []byte(pem))
}

// check compares a certificate with the offer's fingerprint.
func (f remoteFingerprint) check(raw []byte) error {
	h, err := fingerprint.HashFromString(f.algorithm)
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(raw)
	if err != nil {
		return err
	}
	got, err := fingerprint.Fingerprint(cert, h)
	if err != nil {
		return err
	}
	if !strings.EqualFold(got, f.value) {
		return fmt.Errorf("sfu: the client's DTLS certificate does not match its offer's fingerprint")
	}
	return nil
}
