package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
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

// Engine owns what all routers share: the one webrtc.API (codecs,
// interceptors, settings) and the one UDP and one TCP socket every peer
// connection's ICE runs over.
type Engine struct {
	cfg Config
	log *slog.Logger
	api *webrtc.API

	udp    net.PacketConn
	udpBuf int // the UDP socket's receive buffer as granted (0: unknown)
	udpMux ice.UDPMux
	tcp    net.Listener // nil when TCP is off
	tcpMux ice.TCPMux

	// Peer connections are created one at a time: pion builds a
	// connection's interceptors inside NewPeerConnection, and the
	// role-specific factories below read which role is being built (and
	// leave the subscriber's estimator) here.
	pcMu      sync.Mutex
	building  peerRole
	buildRate int
	built     *estimator

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
	e.udpMux = webrtc.NewICEUDPMux(logs.NewLogger("udpmux"), udp)
	if cfg.TCPPort >= 0 {
		tcp, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenIP, strconv.Itoa(cfg.TCPPort)))
		if err != nil {
			_ = e.udpMux.Close()
			return nil, fmt.Errorf("sfu: ICE TCP port: %w", err)
		}
		e.tcp = tcp
		e.tcpMux = webrtc.NewICETCPMux(logs.NewLogger("tcpmux"), tcp, 64)
	}

	if e.api, err = e.newAPI(logs); err != nil {
		_ = e.closeSockets()
		return nil, err
	}
	return e, nil
}

func (e *Engine) newAPI(logs pionLogs) (*webrtc.API, error) {
	m, err := newMediaEngine()
	if err != nil {
		return nil, err
	}

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
			return nil, fmt.Errorf("sfu: public IPs: %w", err)
		}
	}
	se.SetICETimeouts(iceDisconnectedTimeout, iceFailedTimeout, iceKeepalive)

	// One registry for both roles. Publisher connections only receive and
	// subscriber connections only send, so each interceptor is built only
	// for the role it serves (see roleFactory); the other role gets a no-op
	// and pays neither its goroutines nor its per-packet work.
	reg := &interceptor.Registry{}
	add := func(role peerRole, f interceptor.Factory, err error) error {
		if err != nil {
			return err
		}
		reg.Add(roleFactory{e: e, role: role, inner: f})
		return nil
	}
	reg.Add(statsFactory{e: e}) // first: it sees the wire (stats.go)
	nackGen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(logs))
	if err := add(rolePublisher, nackGen, err); err != nil {
		return nil, err
	}
	rr, err := report.NewReceiverInterceptor(report.WithReceiverLoggerFactory(logs))
	if err := add(rolePublisher, rr, err); err != nil {
		return nil, err
	}
	twccFeedback, err := twcc.NewSenderInterceptor(twcc.WithLoggerFactory(logs))
	if err := add(rolePublisher, twccFeedback, err); err != nil {
		return nil, err
	}
	// Subscribers: the congestion controller, then the transport-wide
	// sequence numbers it reads. Registered in this order so that the
	// header extension is written before the controller sees the packet
	// (pion wraps later interceptors around earlier ones). NACKs and sender
	// reports for subscribers are the engine's own (feedback.go,
	// report.go): they are answered from the publisher's single packet
	// cache and derived from the publisher's clock.
	ccf, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
		est, err := newEstimator(e.buildRate)
		e.built = est
		return est, err
	})
	if err := add(roleSubscriber, ccf, err); err != nil {
		return nil, err
	}
	// The engine's own numbering (twcc.go), not pion's
	// twcc.NewHeaderExtensionInterceptor, which allocates per packet.
	if err := add(roleSubscriber, twccStamperFactory{}, nil); err != nil {
		return nil, err
	}

	return webrtc.NewAPI(
		webrtc.WithMediaEngine(m),
		webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(reg),
	), nil
}

// roleFactory builds its interceptor only for peer connections of one role.
type roleFactory struct {
	e     *Engine
	role  peerRole
	inner interceptor.Factory
}

func (f roleFactory) NewInterceptor(id string) (interceptor.Interceptor, error) {
	if f.e.building != f.role {
		return &interceptor.NoOp{}, nil
	}
	return f.inner.NewInterceptor(id)
}

// newPeerConnection creates a peer connection for role; subscribers also
// get their bandwidth estimator, started at initial bits per second.
func (e *Engine) newPeerConnection(role peerRole, initial int) (*webrtc.PeerConnection, *estimator, error) {
	e.pcMu.Lock()
	defer e.pcMu.Unlock()
	e.building, e.buildRate, e.built = role, initial, nil
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	est := e.built
	e.building, e.built = 0, nil
	if err != nil {
		return nil, nil, err
	}
	e.stats.watchJoin(pc, role)
	return pc, est, nil
}

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
	if e.tcp != nil {
		_ = e.tcp.Close()
	}
	_ = e.udp.Close()
	return errors.Join(errs...)
}
