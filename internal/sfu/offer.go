package sfu

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// The engine reads offers itself, before pion does, because it must decide
// things pion leaves open: which one codec each section is answered with,
// which published track each subscriber section carries, and which simulcast
// rids a publisher announced.

// offerCodec is one payload type of an offered media section.
type offerCodec struct {
	pt       uint8
	name     string // MIME subtype as written in a=rtpmap
	clock    uint32
	channels uint16
	fmtp     string
	feedback []webrtc.RTCPFeedback
	rtxPT    uint8 // the RTX payload type whose apt is pt; 0 if none
}

// detached is c with its own copies of the strings it took from the offer:
// substrings of the offer would keep all of its text alive (a few KiB) for
// as long as a down-track keeps its codec.
func (c offerCodec) detached() offerCodec {
	c.name, c.fmtp = strings.Clone(c.name), strings.Clone(c.fmtp)
	fb := make([]webrtc.RTCPFeedback, len(c.feedback))
	for i, f := range c.feedback {
		fb[i] = webrtc.RTCPFeedback{Type: strings.Clone(f.Type), Parameter: strings.Clone(f.Parameter)}
	}
	c.feedback = fb
	return c
}

// offerSection is one m= section of an offer.
type offerSection struct {
	mid       string
	kind      Kind // "" for application and unknown sections
	direction string
	rejected  bool // port 0
	codecs    []offerCodec
	rids      []string // a=rid:<id> send, in order
	twcc      bool     // the transport-wide-cc header extension is offered
	twccID    uint8    // its id
	setup     string   // a=setup (RFC 4145): the offerer's DTLS role, "" if none
	cryptex   bool     // a=cryptex (RFC 9335): header extensions encrypted
}

// sends/receives tell what the offerer does with the section.
func (s offerSection) sends() bool    { return s.direction == "sendrecv" || s.direction == "sendonly" }
func (s offerSection) receives() bool { return s.direction == "sendrecv" || s.direction == "recvonly" }

// Limits on an offer's shape. IVS's clients (its web and mobile SDKs, the
// browser library in web/sdk, OBS's WHIP output) send one audio and one
// video section, up to three simulcast rids (hi, mid, low), a handful of
// candidates and SSRC lines. Anything larger is refused before pion reads
// it: pion builds state for every rid, candidate and SSRC it is given, and
// an offer with thousands of them cost megabytes each.
const (
	maxOfferSections   = 4  // m= lines, rejected and application ones included
	maxSectionsPerKind = 1  // usable audio (video) sections
	maxRIDs            = 3  // a=rid lines of one section
	maxCandidates      = 64 // a=candidate lines of the whole offer
	maxSSRCLines       = 64 // a=ssrc and a=ssrc-group lines of one section
)

// parseOffer returns the media sections of an SDP offer; errors wrap
// ErrBadOffer and say what to fix.
func parseOffer(offer string) ([]offerSection, error) {
	sd, err := unmarshalOffer(offer)
	if err != nil {
		return nil, err
	}
	return offerSections(sd)
}

// unmarshalOffer parses an offer's SDP, once for everything that reads it
// (offerSections, readLeanOffer).
func unmarshalOffer(offer string) (*sdp.SessionDescription, error) {
	sd := &sdp.SessionDescription{}
	if err := sd.UnmarshalString(offer); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadOffer, err)
	}
	return sd, nil
}

// offerSections returns the media sections of a parsed offer.
func offerSections(sd *sdp.SessionDescription) ([]offerSection, error) {
	if err := checkOfferShape(sd); err != nil {
		return nil, err
	}
	sessionDir, sessionSetup, sessionCryptex := "sendrecv", "", false
	for _, a := range sd.Attributes {
		switch {
		case isDirection(a.Key):
			sessionDir = a.Key
		case a.Key == "setup":
			sessionSetup = a.Value
		case a.Key == "cryptex":
			sessionCryptex = true
		}
	}
	sections := make([]offerSection, 0, len(sd.MediaDescriptions))
	for _, md := range sd.MediaDescriptions {
		sec := offerSection{direction: sessionDir, setup: sessionSetup, cryptex: sessionCryptex, rejected: md.MediaName.Port.Value == 0}
		switch md.MediaName.Media {
		case "audio":
			sec.kind = Audio
		case "video":
			sec.kind = Video
		}
		byPT := map[uint8]*offerCodec{}
		order := make([]uint8, 0, len(md.MediaName.Formats))
		for _, f := range md.MediaName.Formats {
			pt, err := strconv.ParseUint(f, 10, 7)
			if err != nil {
				continue // non-RTP formats (application sections)
			}
			if _, dup := byPT[uint8(pt)]; !dup {
				byPT[uint8(pt)] = &offerCodec{pt: uint8(pt)}
				order = append(order, uint8(pt))
			}
		}
		for _, a := range md.Attributes {
			switch {
			case a.Key == "mid":
				sec.mid = a.Value
			case isDirection(a.Key):
				sec.direction = a.Key
			case a.Key == "setup":
				sec.setup = a.Value
			case a.Key == "cryptex":
				sec.cryptex = true
			case a.Key == "rtpmap":
				pt, rest, ok := ptAttribute(a.Value)
				c := byPT[pt]
				if !ok || c == nil {
					continue
				}
				parts := strings.Split(rest, "/")
				c.name = parts[0]
				if len(parts) > 1 {
					clock, _ := strconv.ParseUint(parts[1], 10, 32)
					c.clock = uint32(clock)
				}
				if len(parts) > 2 {
					ch, _ := strconv.ParseUint(parts[2], 10, 16)
					c.channels = uint16(ch)
				}
			case a.Key == "fmtp":
				if pt, rest, ok := ptAttribute(a.Value); ok && byPT[pt] != nil {
					byPT[pt].fmtp = rest
				}
			case a.Key == "rtcp-fb":
				pt, rest, ok := ptAttribute(a.Value)
				if !ok || byPT[pt] == nil {
					continue
				}
				typ, param, _ := strings.Cut(rest, " ")
				byPT[pt].feedback = append(byPT[pt].feedback, webrtc.RTCPFeedback{Type: typ, Parameter: param})
			case a.Key == "rid":
				id, dir, _ := strings.Cut(a.Value, " ")
				dir, _, _ = strings.Cut(dir, " ")
				if dir == "send" && id != "" {
					sec.rids = append(sec.rids, id)
				}
			case a.Key == "extmap":
				if strings.Contains(a.Value, twccURI) {
					idText, _, _ := strings.Cut(a.Value, " ")
					idText, _, _ = strings.Cut(idText, "/") // "<id>/<direction>"
					if id, err := strconv.ParseUint(idText, 10, 8); err == nil && id >= 1 && id <= 14 {
						sec.twcc, sec.twccID = true, uint8(id)
					}
				}
			}
		}
		if sec.kind != "" && !sec.rejected {
			if sec.mid == "" {
				return nil, fmt.Errorf("%w: media section without a=mid", ErrBadOffer)
			}
			for _, pt := range order {
				c := byPT[pt]
				if c.name == "" || strings.EqualFold(c.name, "rtx") {
					continue
				}
				c.rtxPT = rtxFor(byPT, pt)
				sec.codecs = append(sec.codecs, *c)
			}
		}
		sections = append(sections, sec)
	}
	return sections, nil
}

// checkOfferShape refuses offers that no client of IVS sends and that
// would make pion build unbounded state: the limits above, and mids that
// are not unique (pion would put a track in the wrong section).
func checkOfferShape(sd *sdp.SessionDescription) error {
	if n := len(sd.MediaDescriptions); n > maxOfferSections {
		return fmt.Errorf("%w: %d media sections; at most %d are accepted (one audio and one video)", ErrBadOffer, n, maxOfferSections)
	}
	candidates := 0
	for _, a := range sd.Attributes {
		if a.Key == "candidate" {
			candidates++
		}
	}
	mids := map[string]bool{}
	kinds := map[string]int{}
	for _, md := range sd.MediaDescriptions {
		rids, ssrcs := 0, 0
		mid := ""
		for _, a := range md.Attributes {
			switch a.Key {
			case "rid":
				rids++
			case "ssrc", "ssrc-group":
				ssrcs++
			case "candidate":
				candidates++
			case "mid":
				if mid != "" {
					return fmt.Errorf("%w: a media section has two a=mid lines (%q and %q)", ErrBadOffer, mid, a.Value)
				}
				mid = a.Value
			}
		}
		kind := md.MediaName.Media
		if rids > maxRIDs {
			return fmt.Errorf("%w: the %s section has %d a=rid lines; at most %d simulcast layers are accepted", ErrBadOffer, kind, rids, maxRIDs)
		}
		if ssrcs > maxSSRCLines {
			return fmt.Errorf("%w: the %s section has %d a=ssrc lines; at most %d are accepted", ErrBadOffer, kind, ssrcs, maxSSRCLines)
		}
		if mid != "" {
			if mids[mid] {
				return fmt.Errorf("%w: a=mid:%s names two media sections; each section needs its own mid", ErrBadOffer, mid)
			}
			mids[mid] = true
		}
		if (kind == "audio" || kind == "video") && md.MediaName.Port.Value != 0 {
			if kinds[kind]++; kinds[kind] > maxSectionsPerKind {
				return fmt.Errorf("%w: more than one %s section; one audio and one video section are accepted", ErrBadOffer, kind)
			}
		}
	}
	if candidates > maxCandidates {
		return fmt.Errorf("%w: %d ICE candidates; at most %d are accepted", ErrBadOffer, candidates, maxCandidates)
	}
	return nil
}

// rtxFor finds the RTX payload type associated (apt=) with pt.
func rtxFor(byPT map[uint8]*offerCodec, pt uint8) uint8 {
	want := "apt=" + strconv.Itoa(int(pt))
	for _, c := range byPT {
		if strings.EqualFold(c.name, "rtx") {
			for p := range strings.SplitSeq(c.fmtp, ";") {
				if strings.TrimSpace(p) == want {
					return c.pt
				}
			}
		}
	}
	return 0
}

func isDirection(key string) bool {
	switch key {
	case "sendrecv", "sendonly", "recvonly", "inactive":
		return true
	}
	return false
}

// ptAttribute splits "<pt> <rest>" (rtpmap, fmtp, rtcp-fb values).
func ptAttribute(v string) (uint8, string, bool) {
	head, rest, ok := strings.Cut(v, " ")
	if !ok {
		return 0, "", false
	}
	pt, err := strconv.ParseUint(head, 10, 7)
	if err != nil {
		return 0, "", false
	}
	return uint8(pt), strings.TrimSpace(rest), true
}

// firstSupported returns the first codec of the section, in the offerer's
// order of preference, that the engine can forward.
func (s offerSection) firstSupported() (offerCodec, codecFamily, bool) {
	for _, c := range s.codecs {
		if f := supportedFamily(s.kind, c); f != familyNone {
			return c, f, true
		}
	}
	return offerCodec{}, familyNone, false
}

// codecFor returns the section's codec that can carry a stream of family f.
func (s offerSection) codecFor(f codecFamily) (offerCodec, bool) {
	for _, c := range s.codecs {
		if supportedFamily(s.kind, c) == f {
			return c, true
		}
	}
	return offerCodec{}, false
}
