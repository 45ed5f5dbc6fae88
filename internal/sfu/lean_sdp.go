package sfu

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// leanOffer is what a lean connection needs from a subscriber's offer
// beyond the media sections (offer.go).
type leanOffer struct {
	sd          *sdp.SessionDescription
	fingerprint remoteFingerprint
	// The client's ICE credentials, for the engine's own checks (lean.go).
	ufrag, pwd string
}

// readLeanOffer says whether an offer can be answered by a lean connection
// (lean.go): all its media bundled (RFC 9143) in one transport, a
// certificate fingerprint, no data channel. (An offerer that insists on
// being the DTLS server has no direct path, which Subscribe checks first.)
// ok false leaves the subscriber to pion.
func readLeanOffer(sd *sdp.SessionDescription) (*leanOffer, bool) {
	o := &leanOffer{sd: sd}
	var bundle []string
	for _, a := range o.sd.Attributes {
		switch a.Key {
		case "group":
			if f := strings.Fields(a.Value); len(f) > 0 && f[0] == "BUNDLE" {
				bundle = f[1:]
			}
		case "fingerprint":
			o.fingerprint = parseFingerprint(a.Value)
		case "ice-ufrag":
			o.ufrag = a.Value
		case "ice-pwd":
			o.pwd = a.Value
		}
	}
	for _, md := range o.sd.MediaDescriptions {
		if md.MediaName.Port.Value == 0 {
			continue
		}
		if md.MediaName.Media != "audio" && md.MediaName.Media != "video" {
			return nil, false // a data channel needs SCTP: pion's
		}
		mid, _ := md.Attribute("mid")
		if !slices.Contains(bundle, mid) {
			return nil, false
		}
		if o.fingerprint.value == "" {
			if v, ok := md.Attribute("fingerprint"); ok {
				o.fingerprint = parseFingerprint(v)
			}
		}
		if o.ufrag == "" {
			o.ufrag, _ = md.Attribute("ice-ufrag")
			o.pwd, _ = md.Attribute("ice-pwd")
		}
	}
	if o.fingerprint.value == "" || len(bundle) == 0 {
		return nil, false
	}
	o.ufrag, o.pwd = strings.Clone(o.ufrag), strings.Clone(o.pwd)
	return o, true
}

func parseFingerprint(v string) remoteFingerprint {
	alg, val, _ := strings.Cut(strings.TrimSpace(v), " ")
	return remoteFingerprint{algorithm: strings.ToLower(alg), value: strings.TrimSpace(val)}
}

// answer writes the answer to o for subscriber s on lean connection c:
// ICE-lite, the engine the DTLS server, one codec per section with RTX
// where offered, no header extension but transport-wide-cc for a
// subscriber with congestion control, the engine's host candidates.
func (c *leanConn) answer(o *leanOffer, s *Subscriber, plan []subscribeSection, fingerprints []webrtc.DTLSFingerprint) string {
	offered := map[string][]offerCodec{} // by mid, for sections answered inactive
	for _, ps := range plan {
		offered[ps.sec.mid] = ps.sec.codecs
	}
	var b strings.Builder
	b.WriteString("v=0\r\n")
	fmt.Fprintf(&b, "o=- %d 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", randUint32()&0x7fffffff)
	var bundled []string
	for _, md := range o.sd.MediaDescriptions {
		if mid, ok := md.Attribute("mid"); ok && md.MediaName.Port.Value != 0 {
			bundled = append(bundled, mid)
		}
	}
	fmt.Fprintf(&b, "a=group:BUNDLE %s\r\n", strings.Join(bundled, " "))
	b.WriteString("a=ice-lite\r\n")
	b.WriteString("a=msid-semantic: WMS *\r\n")
	for _, fp := range fingerprints {
		fmt.Fprintf(&b, "a=fingerprint:%s %s\r\n", fp.Algorithm, strings.ToUpper(fp.Value))
	}
	for _, md := range o.sd.MediaDescriptions {
		mid, _ := md.Attribute("mid")
		proto := strings.Join(md.MediaName.Protos, "/")
		if md.MediaName.Port.Value == 0 {
			fmt.Fprintf(&b, "m=%s 0 %s %s\r\n", md.MediaName.Media, proto, strings.Join(md.MediaName.Formats, " "))
			if mid != "" {
				fmt.Fprintf(&b, "a=mid:%s\r\n", mid)
			}
			continue
		}
		d := s.down(mid)
		var codec offerCodec
		if d != nil {
			codec = d.codec
		} else if cs := offered[mid]; len(cs) > 0 {
			codec = cs[0] // any will do: nothing is sent
		}
		pt := strconv.Itoa(int(codec.pt))
		if codec.name == "" && len(md.MediaName.Formats) > 0 {
			pt = md.MediaName.Formats[0]
		}
		rtx := d != nil && d.rtxSSRC != 0
		if rtx {
			pt += " " + strconv.Itoa(int(d.rtxPT))
		}
		fmt.Fprintf(&b, "m=%s 9 %s %s\r\nc=IN IP4 0.0.0.0\r\n", md.MediaName.Media, proto, pt)
		fmt.Fprintf(&b, "a=mid:%s\r\n", mid)
		fmt.Fprintf(&b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", c.ufrag, c.pwd)
		b.WriteString("a=setup:passive\r\na=rtcp-mux\r\n")
		if _, ok := md.Attribute("rtcp-rsize"); ok {
			b.WriteString("a=rtcp-rsize\r\n")
		}
		if c.direct.cryptex {
			b.WriteString("a=cryptex\r\n")
		}
		if codec.name != "" {
			fmt.Fprintf(&b, "a=rtpmap:%d %s/%d", codec.pt, codec.name, codec.clock)
			if codec.channels > 0 {
				fmt.Fprintf(&b, "/%d", codec.channels)
			}
			b.WriteString("\r\n")
			if codec.fmtp != "" {
				fmt.Fprintf(&b, "a=fmtp:%d %s\r\n", codec.pt, codec.fmtp)
			}
			for _, fb := range codec.feedback {
				if !leanFeedback(fb) && !(fb.Type == webrtc.TypeRTCPFBTransportCC && c.stamper != nil) {
					continue
				}
				if fb.Parameter != "" {
					fmt.Fprintf(&b, "a=rtcp-fb:%d %s %s\r\n", codec.pt, fb.Type, fb.Parameter)
				} else {
					fmt.Fprintf(&b, "a=rtcp-fb:%d %s\r\n", codec.pt, fb.Type)
				}
			}
			if rtx {
				fmt.Fprintf(&b, "a=rtpmap:%d rtx/%d\r\na=fmtp:%d apt=%d\r\n", d.rtxPT, codec.clock, d.rtxPT, codec.pt)
			}
		}
		if d != nil && c.stamper != nil && d.twccID != 0 {
			fmt.Fprintf(&b, "a=extmap:%d %s\r\n", d.twccID, sdp.TransportCCURI)
		}
		if d == nil {
			b.WriteString("a=inactive\r\n")
		} else {
			b.WriteString("a=sendonly\r\n")
			fmt.Fprintf(&b, "a=msid:%s %s\r\n", d.StreamID(), d.ID())
			ssrcs := []uint32{d.ssrc}
			if rtx {
				fmt.Fprintf(&b, "a=ssrc-group:FID %d %d\r\n", d.ssrc, d.rtxSSRC)
				ssrcs = append(ssrcs, d.rtxSSRC)
			}
			for _, ssrc := range ssrcs {
				fmt.Fprintf(&b, "a=ssrc:%d cname:%s\r\n", ssrc, d.StreamID())
				fmt.Fprintf(&b, "a=ssrc:%d msid:%s %s\r\n", ssrc, d.StreamID(), d.ID())
			}
		}
		for j, a := range c.e.leanCandidates {
			// RFC 8445 §5.1.2.1: host type preference 126, one local
			// preference per address, component 1.
			prio := 126<<24 | (65535-j)<<8 | 255
			fmt.Fprintf(&b, "a=candidate:%d 1 udp %d %s %d typ host\r\n", j+1, prio, a, c.e.udpPort)
		}
		if c.e.tcp != nil {
			// RFC 6544: passive TCP, below every UDP candidate (its
			// type preference lower, as pion's and browsers' are).
			port := c.e.tcp.Addr().(*net.TCPAddr).Port
			for j, a := range c.e.leanCandidates {
				prio := 90<<24 | (65535-j)<<8 | 255
				fmt.Fprintf(&b, "a=candidate:%d 1 tcp %d %s %d typ host tcptype passive\r\n", 100+j+1, prio, a, port)
			}
		}
		b.WriteString("a=end-of-candidates\r\n")
	}
	return b.String()
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// leanFeedback is the RTCP feedback a lean connection acts on: NACK,
// PLI and FIR; and transport-wide feedback where the subscriber has a
// congestion controller (answer).
func leanFeedback(fb webrtc.RTCPFeedback) bool {
	switch {
	case fb.Type == webrtc.TypeRTCPFBNACK && (fb.Parameter == "" || fb.Parameter == "pli"):
		return true
	case fb.Type == webrtc.TypeRTCPFBCCM && fb.Parameter == "fir":
		return true
	}
	return false
}

// hostCandidateAddrs are the addresses lean answers give as host
// candidates, as pion's agents gather them for the engine's sockets: the
// public IPs when configured; else the listen address when it is one;
// else every up interface's addresses, loopback included, IPv6 link-local
// ones excepted.
func hostCandidateAddrs(cfg Config) ([]netip.Addr, error) {
	if len(cfg.PublicIPs) > 0 {
		var out []netip.Addr
		for _, s := range cfg.PublicIPs {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("sfu: public IP %q: %w", s, err)
			}
			out = append(out, a.Unmap())
		}
		return out, nil
	}
	if cfg.ListenIP != "" {
		if a, err := netip.ParseAddr(cfg.ListenIP); err == nil && !a.IsUnspecified() {
			return []netip.Addr{a.Unmap()}, nil
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	listen, _ := netip.ParseAddr(cfg.ListenIP) // "" or IPv4's/IPv6's any address here
	var out []netip.Addr
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			pfx, err := netip.ParsePrefix(a.String())
			if err != nil {
				continue
			}
			ip := pfx.Addr().Unmap()
			if ip.IsLinkLocalUnicast() || ip.IsMulticast() {
				continue
			}
			if listen.Is4() && ip.Is6() {
				continue // bound to IPv4's any address
			}
			out = append(out, ip)
		}
	}
	return out, nil
}
