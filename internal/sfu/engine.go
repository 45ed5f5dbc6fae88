package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// ICE timings. The server sends a consent check (a STUN binding request,
// RFC 7675) every iceKeepalive on each selected pair and the peer answers
// it, so a live peer is never silent for long. A peer silent for
// iceDisconnectedTimeout is disconnected, and iceFailedTimeout later the
// connection fails and closes: a browser closed without leaving is gone in
// about six seconds instead of pion's default twenty. A connection whose
// ICE never completes fails after the same six seconds of checking, so an
// abandoned publish gives its publisher slot back as soon.
const (
	iceKeepalive           = 1 * time.Second
	iceDisconnectedTimeout = 3 * time.Second
	iceFailedTimeout       = 3 * time.Second
)

// tcpMuxQueue is how many packets read from an ICE-TCP connection may wait
// for the connection's ICE candidate to take them. pion's TCP mux makes
// this queue for every connection's TCP candidate, used or not (every
// answer has one: browsers' offers do not say whether they can use it), at
// 56 bytes a slot: 3.5 KiB a connection at 64. A full queue stops the
// mux reading that TCP connection until the candidate takes a packet (it
// drops nothing), and the candidate's read loop is always waiting, so a
// few slots keep up.
const tcpMuxQueue = 8

// Engine owns what all routers share: the codecs, settings and
// interceptors peer connections are built with and the one UDP and one TCP
// socket every peer connection's ICE runs over.
type Engine struct {
	cfg Config
	log *slog.Logger

	udp     net.PacketConn
	udpPort int
	udpBuf  int          // the UDP socket's receive buffer as granted (0: unknown)
	send    packetSender // the UDP socket, for the direct send path (direct.go)
	udpMux  ice.UDPMux
	// arrivals are the UDP socket's RTP arrival times (arrival.go).
	arrivals *arrivalTable
	tcp      net.Listener // nil when TCP is off
	tcpMux   ice.TCPMux
	// tcpSplit is what tcpMux accepts from: it gives the connections of
	// the engine's own subscriber transport to it, the rest to pion
	// (tcpsplit.go).
	tcpSplit *tcpSplitter

	// Peer connections are built concurrently, without a lock the engine
	// shares: each role has its own API (its own interceptor registry,
	// with only the interceptors that role needs), and a subscriber with
	// congestion control gets an API of its own, whose controller factory
	// hands its estimator to that one connection (newPeerConnection).
	media       *webrtc.MediaEngine   // copied by pion into every connection
	settings    webrtc.SettingEngine  // publishers' (each connection's own buffers: publisherAPI)
	subSettings webrtc.SettingEngine  // subscribers': settings, and their queues (queue.go)
	pubShared   []interceptor.Factory // rolePublisher's, before its own feedback (twcc.go)
	subShared   []interceptor.Factory

	cert certificate

	fanout *spreader // spread.go; nil with one core

	// lean are the engine's own subscriber connections (lean.go), and
	// leanCandidates the addresses their answers give.
	lean           leanTable
	leanCandidates []netip.Addr

	mu      sync.Mutex
	routers map[*Router]struct{}
	closed  bool

	stats engineStats // stats.go
}

type peerRole uint8

const (
	rolePublisher peerRole = iota + 1
	roleSubscriber
	// roleFixedSubscriber is a subscriber whose publisher sends one
	// encoding per track: the allocator has nothing to choose (it forwards
	// the only encoding whatever the estimate), so the connection is built
	// without the congestion controller and its transport-wide sequence
	// numbers, which cost about a quarter of the server's CPU per
	// forwarded packet (docs/performance.md).
	roleFixedSubscriber
)

// NewEngine opens the engine's UDP (and TCP) ICE port and builds its API.
func NewEngine(cfg Config) (*Engine, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{cfg: cfg, log: log, routers: map[*Router]struct{}{}}
	logs := pionLogs{log: log}

	udp, err := net.ListenPacket("udp", net.JoinHostPort(cfg.ListenIP, strconv.Itoa(cfg.UDPPort)))
	if err != nil {
		return nil, fmt.Errorf("sfu: ICE UDP port: %w", err)
	}
	e.udp = udp
	if want := cfg.UDPReadBuffer; want >= 0 {
		if want == 0 {
			want = defaultUDPReadBuffer
		}
		e.udpBuf = sizeReadBuffer(udp, want, log)
	}
	// Sends that run in parallel (sendconn_linux.go) for spread fan-outs;
	// publishers' packets timed as the kernel received them, for their
	// transport-wide feedback (arrival.go).
	e.arrivals = new(arrivalTable)
	udpConn := udp.(*net.UDPConn)
	e.udpPort = udpConn.LocalAddr().(*net.UDPAddr).Port
	sc := newSendConn(udpConn)
	if ps, ok := sc.(packetSender); ok {
		e.send = ps
	} else {
		e.send = udpSender{udpConn}
	}
	if e.leanCandidates, err = hostCandidateAddrs(cfg); err != nil {
		_ = udp.Close()
		return nil, err
	}
	e.udpMux = webrtc.NewICEUDPMux(logs.NewLogger("udpmux"), stampArrivals(sc, udpConn, e.arrivals, e.lean.divert))
	if cfg.TCPPort >= 0 {
		tcp, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenIP, strconv.Itoa(cfg.TCPPort)))
		if err != nil {
			_ = e.udpMux.Close()
			return nil, fmt.Errorf("sfu: ICE TCP port: %w", err)
		}
		e.tcp = tcp
		e.tcpSplit = newTCPSplitter(tcp, e.claimsTCPUfrag, e.takeTCP, log)
		e.tcpMux = webrtc.NewICETCPMux(logs.NewLogger("tcpmux"), e.tcpSplit, tcpMuxQueue)
	}

	if err = e.newAPIs(logs); err != nil {
		_ = e.closeSockets()
		return nil, err
	}
	e.fanout = newSpreader(cfg.FanoutWorkers)
	return e, nil
}

func (e *Engine) newAPIs(logs pionLogs) error {
	m, err := newMediaEngine()
	if err != nil {
		return err
	}
	e.media = m

	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetICEUDPMux(e.udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if e.tcpMux != nil {
		se.SetICETCPMux(e.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	// A server's candidates must be reachable as they are: no mDNS names,
	// loopback included (local clients, tests), and behind 1:1 NAT the
	// public addresses instead of the interfaces'.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	if len(e.cfg.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        e.cfg.PublicIPs,
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return fmt.Errorf("sfu: public IPs: %w", err)
		}
	}
	se.SetICETimeouts(iceDisconnectedTimeout, iceFailedTimeout, iceKeepalive)
	// One view of the host's network interfaces for every connection:
	// pion's ICE agent otherwise lists them (two netlink dumps) and keeps
	// its own copy for each connection, about 7 KiB of heap a subscriber
	// (docs/performance.md). The view is taken once, as the ICE sockets'
	// own addresses are: they are bound when the engine starts, and the
	// agents gather once (no continual gathering, which would refresh it).
	ifaces, err := stdnet.NewNet()
	if err != nil {
		return fmt.Errorf("sfu: network interfaces: %w", err)
	}
	se.SetNet(ifaces)
	e.settings = se
	// What a subscriber sends is RTCP, a few packets a second: its streams
	// queue them in packetQueues, which hold nothing once read and drop
	// what nobody reads, instead of pion's buffers of up to 100 KB a
	// stream (queue.go). Publishers keep pion's: their media comes in
	// bursts (a keyframe) that must not be dropped.
	e.subSettings = se
	e.subSettings.BufferFactory = subscriberBuffers

	// Publisher connections only receive and subscriber connections only
	// send, so each role's registry has only the interceptors it needs:
	// the other role pays neither their goroutines nor their per-packet
	// work. The stats interceptor is first in every one: it sees the wire
	// (stats.go).
	nackGen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(logs))
	if err != nil {
		return err
	}
	rr, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(logs))
	if err != nil {
		return err
	}
	// Each publisher connection gets an API of its own (publisherAPI),
	// for its transport-wide feedback, stamped at arrival (twcc.go).
	e.pubShared = []interceptor.Factory{statsFactory{e: e, publisher: true}, nackGen, rr}
	// Subscribers: NACKs and sender reports are the engine's own
	// (feedback.go, report.go): they are answered from the publisher's
	// single packet cache and derived from the publisher's clock. Those
	// with congestion control (newPeerConnection) also get the
	// controller, then the transport-wide sequence numbers it reads:
	// registered in this order so that the header extension is written
	// before the controller sees the packet (pion wraps later interceptors
	// around earlier ones). The numbering is the engine's own (twcc.go),
	// not pion's twcc.NewHeaderExtensionInterceptor, which allocates per
	// packet.
	e.subShared = []interceptor.Factory{statsFactory{e: e}}
	return nil
}

// newAPI is an API with the engine's codecs, settings se and factories as
// its interceptors, in order. Building one is cheap (pion copies the codecs
// per connection anyway).
func (e *Engine) newAPI(se webrtc.SettingEngine, factories ...interceptor.Factory) *webrtc.API {
	reg := &interceptor.Registry{}
	for _, f := range factories {
		reg.Add(f)
	}
	return webrtc.NewAPI(
		webrtc.WithMediaEngine(e.media),
		webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(reg),
	)
}

// connParts are what a peer connection is built with besides pion's own.
type connParts struct {
	est    *estimator  // subscribers with congestion control: their estimator
	direct *directConn // subscribers on the direct send path (direct.go)
}

// newPeerConnection creates a peer connection for role; subscribers with
// congestion control also get their bandwidth estimator, started at
// initial bits per second, and subscribers with direct their direct send
// path. Safe to call concurrently.
func (e *Engine) newPeerConnection(role peerRole, initial int, direct bool) (*webrtc.PeerConnection, connParts, error) {
	var api *webrtc.API
	var parts connParts
	switch role {
	case rolePublisher:
		api = e.publisherAPI()
	case roleFixedSubscriber, roleSubscriber:
		// Each subscriber connection gets an API of its own: its settings
		// carry the connection's DTLS hooks (direct.go), its interceptors
		// its estimator.
		se := e.subSettings
		var factories []interceptor.Factory
		if direct {
			d, err := e.newDirectConn(&se)
			if err != nil {
				return nil, connParts{}, err
			}
			parts.direct = d
			factories = append(factories, directFactory{d}) // innermost
		}
		factories = append(factories, e.subShared...)
		if role == roleSubscriber {
			// pion builds the connection's interceptors inside
			// NewPeerConnection, on this goroutine: the controller's
			// factory is this connection's own, and its estimator lands
			// in parts.est.
			ccf, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
				b, err := newEstimator(initial)
				parts.est = b
				return b, err
			})
			if err != nil {
				return nil, connParts{}, err
			}
			factories = append(factories, ccf, twccStamperFactory{})
		}
		api = e.newAPI(se, factories...)
	default:
		return nil, connParts{}, fmt.Errorf("sfu: unknown peer role %d", role)
	}
	cert, err := e.cert.get()
	if err != nil {
		return nil, connParts{}, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
		Certificates:  []webrtc.Certificate{cert},
	})
	if err != nil {
		return nil, connParts{}, err
	}
	var connected func()
	if d := parts.direct; d != nil {
		pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(d.pairChanged)
		connected = d.handshakeDone
	}
	e.stats.watchJoin(pc, role, connected)
	return pc, parts, nil
}

// batchSends tells forwarders to take what has queued as one batch
// (direct.go): only the direct path sends batches.
func (e *Engine) batchSends() bool { return !e.cfg.OneByOne && !e.cfg.PionSendPath }

// NewRouter returns the router for one stage session. A router made after
// Close is closed already.
func (e *Engine) NewRouter(id string) *Router {
	r := newRouter(e, id)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		r.shutdown()
		return r
	}
	e.routers[r] = struct{}{}
	return r
}

func (e *Engine) forget(r *Router) {
	e.mu.Lock()
	delete(e.routers, r)
	e.mu.Unlock()
}

// UDPAddr is the address of the engine's ICE UDP socket (useful when
// Config.UDPPort was 0). Added to the contract for the signalling layer and
// tests.
func (e *Engine) UDPAddr() net.Addr { return e.udp.LocalAddr() }

// TCPAddr is the address of the ICE TCP listener, or nil when TCP is off.
func (e *Engine) TCPAddr() net.Addr {
	if e.tcp == nil {
		return nil
	}
	return e.tcp.Addr()
}

// Close closes every router (and so every peer connection) and then the
// engine's sockets. It waits for the engine's goroutines to end, so it must
// not be called from a callback.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	routers := make([]*Router, 0, len(e.routers))
	for r := range e.routers {
		routers = append(routers, r)
	}
	e.mu.Unlock()

	for _, r := range routers {
		_ = r.Close()
	}
	e.fanout.close()
	return e.closeSockets()
}

func (e *Engine) closeSockets() error {
	var errs []error
	if e.tcpMux != nil {
		errs = append(errs, e.tcpMux.Close())
	}
	if e.udpMux != nil {
		errs = append(errs, e.udpMux.Close())
	}
	// The muxes close their sockets; closing again is harmless and covers
	// a mux that did not.
	if e.tcpSplit != nil {
		_ = e.tcpSplit.Close()
	}
	if e.tcp != nil {
		_ = e.tcp.Close()
	}
	_ = e.udp.Close()
	return errors.Join(errs...)
}
