package rtclient

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

var (
	// ErrConnectionFailed is returned when the peer connection fails or is
	// closed before it connects.
	ErrConnectionFailed = errors.New("rtclient: peer connection failed")
	// ErrClosed is returned by calls on a closed Publisher, Subscriber or
	// Events.
	ErrClosed = errors.New("rtclient: closed")
)

// ICE transports for PublishOptions.ICETransport and SubscribeOptions.ICETransport.
const (
	ICEAny = ""
	ICEUDP = "udp"
	ICETCP = "tcp"
)

// peerConfig is what a Publisher's and a Subscriber's peer connections have
// in common.
type peerConfig struct {
	iceTransport string
	loopbackOnly bool
	settings     func(*webrtc.SettingEngine)
	first        []interceptor.Interceptor // run closest to the network, first[0] nearest
	certificates []webrtc.Certificate      // nil: pion makes one
}

// Payload types of the codecs this package offers. They follow pion's and
// browsers' habits, but any the server answers with are fine.
var (
	videoFeedback = []webrtc.RTCPFeedback{
		{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"},
		{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "transport-cc"},
	}
	offeredCodecs = []struct {
		codec webrtc.RTPCodecParameters
		kind  webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{RTPCodecCapability: withFeedback(CodecOpus, []webrtc.RTCPFeedback{{Type: "transport-cc"}}), PayloadType: 111}, webrtc.RTPCodecTypeAudio},
		{webrtc.RTPCodecParameters{RTPCodecCapability: withFeedback(CodecVP8, videoFeedback), PayloadType: 96}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: rtx(96), PayloadType: 97}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: withFeedback(CodecH264, videoFeedback), PayloadType: 102}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: rtx(102), PayloadType: 103}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: withFeedback(h264Fmtp("42001f"), videoFeedback), PayloadType: 104}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: rtx(104), PayloadType: 105}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: withFeedback(h264Codec(77), videoFeedback), PayloadType: 106}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: rtx(106), PayloadType: 107}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: withFeedback(h264Codec(100), videoFeedback), PayloadType: 108}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: rtx(108), PayloadType: 109}, webrtc.RTPCodecTypeVideo},
	}
)

func withFeedback(c webrtc.RTPCodecCapability, fb []webrtc.RTCPFeedback) webrtc.RTPCodecCapability {
	c.RTCPFeedback = fb
	return c
}

func rtx(apt int) webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: fmt.Sprintf("apt=%d", apt)}
}

func h264Fmtp(profileLevelID string) webrtc.RTPCodecCapability {
	c := CodecH264
	c.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + profileLevelID
	return c
}

// newPeerConnection builds a peer connection with this package's codecs,
// header extensions and interceptors (NACK both ways, RTCP reports, TWCC,
// stats), and cfg's network settings.
func newPeerConnection(cfg peerConfig) (*webrtc.PeerConnection, error) {
	m := &webrtc.MediaEngine{}
	for _, c := range offeredCodecs {
		if err := m.RegisterCodec(c.codec, c.kind); err != nil {
			return nil, err
		}
	}
	for _, ext := range []struct {
		uri   string
		kinds []webrtc.RTPCodecType
	}{
		{sdp.SDESMidURI, []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo}},
		{sdp.SDESRTPStreamIDURI, []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo}},
		{sdp.SDESRepairRTPStreamIDURI, []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo}},
	} {
		for _, k := range ext.kinds {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: ext.uri}, k); err != nil {
				return nil, err
			}
		}
	}

	reg := &interceptor.Registry{}
	for _, first := range cfg.first {
		reg.Add(interceptorFactory(func(string) (interceptor.Interceptor, error) { return first, nil }))
	}
	// pion's NACK responder answers the server's NACKs; NACKs of our own
	// are the Subscriber's (see nack.go), not pion's generator's.
	responder, err := nack.NewResponderInterceptor()
	if err != nil {
		return nil, err
	}
	reg.Add(responder)
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	m.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(m, reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureStatsInterceptor(reg); err != nil {
		return nil, err
	}

	se := webrtc.SettingEngine{}
	// Servers under test listen on loopback; a client that left loopback out
	// could not reach them. Servers like IVS never offer mDNS candidates.
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if cfg.loopbackOnly {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	switch strings.ToLower(cfg.iceTransport) {
	case ICEAny:
	case ICEUDP:
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	case ICETCP:
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6})
	default:
		return nil, fmt.Errorf("rtclient: ICE transport %q: want \"\", \"udp\" or \"tcp\"", cfg.iceTransport)
	}
	if cfg.settings != nil {
		cfg.settings(&se)
	}

	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	return api.NewPeerConnection(webrtc.Configuration{Certificates: cfg.certificates})
}

// interceptorFactory makes an interceptor.Factory of a function.
type interceptorFactory func(id string) (interceptor.Interceptor, error)

func (f interceptorFactory) NewInterceptor(id string) (interceptor.Interceptor, error) { return f(id) }

// setCodecPreferences limits a transceiver to one codec (and its RTX), so
// that the offer carries exactly what will be sent.
func setCodecPreferences(tr *webrtc.RTPTransceiver, c webrtc.RTPCodecCapability) error {
	var prefs []webrtc.RTPCodecParameters
	var pt webrtc.PayloadType
	for _, oc := range offeredCodecs {
		if strings.EqualFold(oc.codec.MimeType, c.MimeType) && (c.SDPFmtpLine == "" || oc.codec.SDPFmtpLine == c.SDPFmtpLine) {
			prefs = append(prefs, oc.codec)
			pt = oc.codec.PayloadType
			break
		}
	}
	if prefs == nil {
		return fmt.Errorf("rtclient: codec %s %q is not one this client offers", c.MimeType, c.SDPFmtpLine)
	}
	for _, oc := range offeredCodecs {
		if oc.codec.MimeType == webrtc.MimeTypeRTX && oc.codec.SDPFmtpLine == fmt.Sprintf("apt=%d", pt) {
			prefs = append(prefs, oc.codec)
		}
	}
	return tr.SetCodecPreferences(prefs)
}

// connState follows a peer connection's state: connected is closed when it
// first connects, dead when it fails or closes.
type connState struct {
	connected, dead    chan struct{}
	connOnce, deadOnce sync.Once
}

func watchConnection(pc *webrtc.PeerConnection) *connState {
	cs := &connState{connected: make(chan struct{}), dead: make(chan struct{})}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			cs.connOnce.Do(func() { close(cs.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			cs.deadOnce.Do(func() { close(cs.dead) })
		}
	})
	return cs
}

// negotiate makes the offer, waits for ICE gathering (WHIP does not trickle),
// POSTs it, applies the answer and waits until the connection is up. before
// runs between SetLocalDescription and the POST.
func negotiate(ctx context.Context, pc *webrtc.PeerConnection, cs *connState, sig *signaller, target string, hdr map[string][]string, before func() error) error {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return ctx.Err()
	}
	if before != nil {
		if err := before(); err != nil {
			return err
		}
	}
	answer, err := sig.offer(ctx, target, pc.LocalDescription().SDP, hdr)
	if err != nil {
		return err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("rtclient: applying the answer: %w", err)
	}
	select {
	case <-cs.connected:
		return nil
	case <-cs.dead:
		return ErrConnectionFailed
	case <-ctx.Done():
		return fmt.Errorf("rtclient: waiting for the connection: %w", ctx.Err())
	}
}
