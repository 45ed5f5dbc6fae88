package rtclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

// ErrNoMedia is returned by Publish when PublishOptions names no source.
var ErrNoMedia = errors.New("rtclient: nothing to publish")

// PublishOptions configure Publish.
type PublishOptions struct {
	// URL is the full URL to POST the offer to. "" means
	// TokenInfo.WhipURL + "/publish/" + TokenInfo.ParticipantID, as the Web
	// SDK does; an OBS-style client POSTs to the bare whip URL instead.
	URL string
	// Audio is the audio source; nil sends no audio.
	Audio MediaSource
	// Video is the video source; nil sends no video.
	Video MediaSource
	// Simulcast, instead of Video, are up to three layers of one video
	// codec, best first; they are sent with the rids hi, mid and low on one
	// transceiver, and logged under SimulcastKind(rid).
	Simulcast []MediaSource
	// HTTPClient makes the requests; nil means http.DefaultClient. Its
	// redirect policy is not used: the POST follows up to MaxRedirects
	// redirects itself, keeping the Authorization header.
	HTTPClient *http.Client
	// Header holds extra headers for every request (they replace the
	// client's own of the same name).
	Header http.Header
	// ICETransport restricts local candidates: "" (any), "udp" or "tcp"
	// (active ICE-TCP, to test a server's ICE-TCP).
	ICETransport string
	// LoopbackOnly gathers only loopback candidates: for a client and server
	// on one machine, so that no packet leaves it.
	LoopbackOnly bool
	// SettingEngine, if set, is called last on the pion SettingEngine, for
	// any other network setting.
	SettingEngine func(*webrtc.SettingEngine)
	// Certificates, if set, is the DTLS certificate instead of a new one
	// per connection (see SubscribeOptions.Certificates).
	Certificates []webrtc.Certificate
	// DisableFrameHashes turns off SentFrames (saves a SHA-256 per frame in
	// load generation). Counters still run.
	DisableFrameHashes bool
	// NoVideoPlaceholder: without it, a publish with audio only still offers
	// a send-only H.264 video section that never sends, because IVS rejects
	// offers without an H.264 video m-line (IVS-BEHAVIOUR.md §2.1). Set it to
	// offer audio alone.
	NoVideoPlaceholder bool
	// FirstSequenceNumber and FirstTimestamp, if set, are the RTP sequence
	// number and timestamp of the first packet of every track (and of every
	// simulcast layer), instead of pion's random ones. A test starts them
	// just below the 16-bit and 32-bit wraps to cross both in seconds rather
	// than minutes and hours.
	FirstSequenceNumber *uint16
	FirstTimestamp      *uint32
	// OnPacketSent, if set, is called with every RTP packet of a track (or
	// simulcast layer, kind as SentFrames names it) as it leaves for the
	// first time — retransmissions are not reported — with its payload and
	// the time it was sent. A load generator keys send times by payload to
	// measure forwarding latency of media that cannot carry a timestamp
	// (real encoded video). It runs on the sending goroutine, once per
	// packet: it must be quick, and must not keep or change payload.
	OnPacketSent func(kind string, seq uint16, payload []byte, at time.Time)
	// Pacing, if its Rate is set, spreads the video packets over time as a
	// browser's pacer does (see Pacing); retransmissions are paced too.
	// The zero value writes each frame's packets back to back.
	Pacing Pacing
}

// Publisher is one WHIP publish session. Its methods are safe for concurrent use.
type Publisher struct {
	info TokenInfo
	pc   *webrtc.PeerConnection
	cs   *connState
	sig  *signaller

	tracks []*pubTrack
	plis   atomic.Int64

	cancel  context.CancelFunc
	writers sync.WaitGroup // one per track: the frame senders
	readers sync.WaitGroup // one per encoding: the RTCP readers

	closeOnce sync.Once
	closeErr  error
}

// pubTrack is one stream the Publisher sends: a track, or one simulcast layer.
type pubTrack struct {
	kind   string // "audio", "video" or "video/<rid>"
	rid    string
	src    MediaSource
	track  *webrtc.TrackLocalStaticSample
	sender *webrtc.RTPSender
	mime   string
	hash   bool
	log    frameLog
	sent   sendCounter // the packets that left, counted by the sendTap
	plis   atomic.Int64
	err    atomic.Pointer[error] // a source error other than io.EOF
}

// SendStats are the counters of one kind a Publisher sends.
type SendStats struct {
	Frames     int64     // frames written to the track
	Bytes      int64     // their encoded size
	Keyframes  int64     // keyframes among them
	FirstFrame time.Time // when the first was written
	PLIs       int64     // PLIs and FIRs the server sent for this kind
	Err        error     // the error that stopped the source, if any (io.EOF is not one)

	// Packets counts the RTP packets sent, each sequence number once (as
	// they leave the peer connection, after pion's interceptors), and
	// PacketBytes their size with RTP headers; Retransmissions the packets
	// sent again for the server's NACKs (over RTX or not). A subscriber that
	// got fewer distinct packets than Packets missed some: the load
	// generator's expected count.
	Packets         int64
	PacketBytes     int64
	Retransmissions int64
	FirstPacket     time.Time
	LastPacket      time.Time
	// FirstSeq and LastSeq are the sequence numbers of the first and the
	// latest packet, and FirstTimestamp and LastTimestamp their RTP
	// timestamps, unwrapped to 64 bits: a value past 65,535 (or 2^32 − 1)
	// tells that the stream crossed the wrap.
	FirstSeq, LastSeq             int64
	FirstTimestamp, LastTimestamp int64
}

// Publish publishes the sources of opts to the stage of token: it makes an
// offer (non-trickle ICE), POSTs it with the token as Bearer, follows up to
// MaxRedirects redirects keeping Authorization, applies the answer and waits
// until the peer connection is connected. Then frames are sent in real time
// until Close. ctx bounds only the setup.
func Publish(ctx context.Context, token string, opts PublishOptions) (*Publisher, error) {
	info, err := ParseToken(token)
	if err != nil {
		return nil, err
	}
	target := opts.URL
	if target == "" {
		if info.WhipURL == "" {
			return nil, errors.New("rtclient: token has no whip_url and no URL was given")
		}
		target = strings.TrimRight(info.WhipURL, "/") + "/publish/" + url.PathEscape(info.ParticipantID)
	}
	if opts.Video != nil && len(opts.Simulcast) > 0 {
		return nil, errors.New("rtclient: give Video or Simulcast, not both")
	}
	if len(opts.Simulcast) > len(SimulcastRIDs) {
		return nil, fmt.Errorf("rtclient: at most %d simulcast layers", len(SimulcastRIDs))
	}
	if opts.Pacing.Rate < 0 || opts.Pacing.Burst < 0 {
		return nil, fmt.Errorf("rtclient: pacing %+v: want a rate and a burst ≥ 0", opts.Pacing)
	}
	if opts.Audio == nil && opts.Video == nil && len(opts.Simulcast) == 0 {
		return nil, ErrNoMedia
	}
	if opts.Audio != nil && kindOf(opts.Audio.Codec().MimeType) != KindAudio {
		return nil, fmt.Errorf("rtclient: Audio source has codec %s", opts.Audio.Codec().MimeType)
	}
	if opts.Video != nil && kindOf(opts.Video.Codec().MimeType) != KindVideo {
		return nil, fmt.Errorf("rtclient: Video source has codec %s", opts.Video.Codec().MimeType)
	}
	for i, s := range opts.Simulcast {
		if s == nil || !strings.EqualFold(s.Codec().MimeType, opts.Simulcast[0].Codec().MimeType) || kindOf(s.Codec().MimeType) != KindVideo {
			return nil, fmt.Errorf("rtclient: simulcast layer %d: all layers must be sources of one video codec", i)
		}
	}

	var tagger *ridTagger
	tap := newSendTap()
	cfg := peerConfig{iceTransport: opts.ICETransport, loopbackOnly: opts.LoopbackOnly, settings: opts.SettingEngine, first: []interceptor.Interceptor{tap}, certificates: opts.Certificates}
	if len(opts.Simulcast) > 0 {
		// After the tap: the tap counts the packets the tagger has tagged.
		tagger = newRIDTagger()
		cfg.first = append(cfg.first, tagger)
	}
	if opts.Pacing.Rate > 0 {
		// After the tap, which then sees packets leave the pacer.
		cfg.first = append(cfg.first, newPacer(opts.Pacing))
	}
	var trackOpts []func(*webrtc.TrackLocalStaticRTP)
	if opts.FirstSequenceNumber != nil {
		trackOpts = append(trackOpts, webrtc.WithRTPSequenceNumber(*opts.FirstSequenceNumber))
	}
	if opts.FirstTimestamp != nil {
		trackOpts = append(trackOpts, webrtc.WithRTPTimestamp(*opts.FirstTimestamp))
	}
	pc, err := newPeerConnection(cfg)
	if err != nil {
		return nil, err
	}
	p := &Publisher{info: info, pc: pc, cs: watchConnection(pc), sig: newSignaller(opts.HTTPClient, token, opts.Header)}
	fail := func(err error) (*Publisher, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = p.sig.remove(cctx)
		_ = pc.Close()
		return nil, err
	}

	streamID := info.ParticipantID
	if streamID == "" {
		streamID = "rtclient"
	}
	hash := !opts.DisableFrameHashes
	addTrack := func(kind string, src MediaSource) error {
		t, err := webrtc.NewTrackLocalStaticSample(src.Codec(), kind, streamID, trackOpts...)
		if err != nil {
			return err
		}
		tr, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return err
		}
		if err := setCodecPreferences(tr, src.Codec()); err != nil {
			return err
		}
		p.tracks = append(p.tracks, &pubTrack{kind: kind, src: src, track: t, sender: tr.Sender(), mime: src.Codec().MimeType, hash: hash})
		return nil
	}
	if opts.Audio != nil {
		if err := addTrack(KindAudio, opts.Audio); err != nil {
			return fail(err)
		}
	}
	switch {
	case opts.Video != nil:
		if err := addTrack(KindVideo, opts.Video); err != nil {
			return fail(err)
		}
	case len(opts.Simulcast) > 0:
		if err := p.addSimulcast(opts.Simulcast, streamID, hash, trackOpts); err != nil {
			return fail(err)
		}
	case !opts.NoVideoPlaceholder:
		// A track that is never written: the m-line without the media.
		t, err := webrtc.NewTrackLocalStaticSample(CodecH264, KindVideo, streamID)
		if err != nil {
			return fail(err)
		}
		tr, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return fail(err)
		}
		if err := setCodecPreferences(tr, CodecH264); err != nil {
			return fail(err)
		}
	}

	// Once the offer is made the SSRCs and mids are known; the streams are
	// bound to the interceptors when the answer is applied.
	tagStreams := func() error {
		for _, t := range p.tracks {
			for _, enc := range t.sender.GetParameters().Encodings {
				if enc.RID == t.rid {
					if f := opts.OnPacketSent; f != nil {
						kind := t.kind
						t.sent.onSent = func(seq uint16, payload []byte, at time.Time) { f(kind, seq, payload, at) }
					}
					tap.set(uint32(enc.SSRC), &t.sent)
				}
			}
		}
		if tagger == nil {
			return nil
		}
		for _, tr := range pc.GetTransceivers() {
			s := tr.Sender()
			if s == nil {
				continue
			}
			for _, enc := range s.GetParameters().Encodings {
				if enc.RID != "" {
					tagger.set(uint32(enc.SSRC), tr.Mid(), enc.RID)
				}
			}
		}
		return nil
	}
	if err := negotiate(ctx, pc, p.cs, p.sig, target, nil, tagStreams); err != nil {
		return fail(err)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	for _, t := range p.tracks {
		p.readers.Add(1)
		go p.readRTCP(t)
		p.writers.Add(1)
		go p.send(runCtx, t)
	}
	return p, nil
}

// addSimulcast adds one send-only transceiver with an encoding per layer.
func (p *Publisher) addSimulcast(layers []MediaSource, streamID string, hash bool, trackOpts []func(*webrtc.TrackLocalStaticRTP)) error {
	var sender *webrtc.RTPSender
	for i, src := range layers {
		rid := SimulcastRIDs[i]
		t, err := webrtc.NewTrackLocalStaticSample(src.Codec(), KindVideo, streamID, append([]func(*webrtc.TrackLocalStaticRTP){webrtc.WithRTPStreamID(rid)}, trackOpts...)...)
		if err != nil {
			return err
		}
		if i == 0 {
			tr, err := p.pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
			if err != nil {
				return err
			}
			if err := setCodecPreferences(tr, src.Codec()); err != nil {
				return err
			}
			sender = tr.Sender()
		} else if err := sender.AddEncoding(t); err != nil {
			return err
		}
		p.tracks = append(p.tracks, &pubTrack{
			kind: SimulcastKind(rid), rid: rid, src: src, track: t, sender: sender,
			mime: src.Codec().MimeType, hash: hash,
		})
	}
	return nil
}

// send writes the frames of one source in real time until ctx ends or the
// source does.
//
// Hot path: once per frame sent.
func (p *Publisher) send(ctx context.Context, t *pubTrack) {
	defer p.writers.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	start := time.Now()
	var due time.Duration
	for {
		f, err := t.src.NextFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.err.Store(&err)
			}
			return
		}
		if err := t.track.WriteSample(media.Sample{Data: f.Data, Duration: f.Duration}); err == nil {
			var h [32]byte
			if t.hash {
				h = FrameHash(t.mime, f.Data)
			}
			t.log.add(h, t.hash, len(f.Data), f.Keyframe, time.Now())
		}
		due += f.Duration
		wait := time.Until(start.Add(due))
		if wait < -time.Second {
			// Far behind (the machine stalled): start the schedule afresh
			// rather than send a burst.
			start, due, wait = time.Now(), 0, 0
		}
		if wait <= 0 {
			select {
			case <-ctx.Done():
				return
			default:
				continue
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// readRTCP reads the RTCP the server sends about one stream (which also lets
// pion's interceptors answer NACKs), counting PLIs and FIRs and passing them
// on to sources that can make keyframes.
func (p *Publisher) readRTCP(t *pubTrack) {
	defer p.readers.Done()
	kr, _ := t.src.(KeyframeRequester)
	buf := make([]byte, 1500)
	for {
		var (
			n   int
			err error
		)
		if t.rid == "" {
			n, _, err = t.sender.Read(buf)
		} else {
			n, _, err = t.sender.ReadSimulcast(buf, t.rid)
		}
		if errors.Is(err, io.ErrShortBuffer) {
			continue
		}
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.plis.Add(1)
				t.plis.Add(1)
				if kr != nil {
					kr.RequestKeyframe()
				}
			}
		}
	}
}

func (p *Publisher) track(kind string) *pubTrack {
	for _, t := range p.tracks {
		if t.kind == kind {
			return t
		}
	}
	return nil
}

// Token is what the Publisher's token says.
func (p *Publisher) Token() TokenInfo { return p.info }

// Location is the URL of the WHIP resource (the answer's Location header,
// made absolute).
func (p *Publisher) Location() string { return p.sig.location }

// Links returns the answer's Link headers, rel → absolute URL.
func (p *Publisher) Links() map[string]string { return p.sig.copyLinks() }

// PeerConnection is the underlying pion peer connection.
func (p *Publisher) PeerConnection() *webrtc.PeerConnection { return p.pc }

// Kinds lists the kinds being sent: "audio", "video", or the
// SimulcastKind of each layer.
func (p *Publisher) Kinds() []string {
	out := make([]string, len(p.tracks))
	for i, t := range p.tracks {
		out[i] = t.kind
	}
	return out
}

// SentFrames returns the FrameHash of each frame sent of kind, in order: the
// last MaxFrameLog of them. nil for a kind not sent or with hashes disabled.
func (p *Publisher) SentFrames(kind string) [][32]byte {
	t := p.track(kind)
	if t == nil || !t.hash {
		return nil
	}
	return t.log.hashes()
}

// Stats returns the counters of kind.
func (p *Publisher) Stats(kind string) SendStats {
	t := p.track(kind)
	if t == nil {
		return SendStats{}
	}
	var s SendStats
	s.Frames, s.Bytes, s.Keyframes, s.FirstFrame = t.log.counts()
	s.PLIs = t.plis.Load()
	t.sent.fill(&s)
	if e := t.err.Load(); e != nil {
		s.Err = *e
	}
	return s
}

// ReceivedPLIs is the number of PLIs and FIRs the server has sent, all
// streams together.
func (p *Publisher) ReceivedPLIs() int { return int(p.plis.Load()) }

// Done is closed when the peer connection has failed or closed.
func (p *Publisher) Done() <-chan struct{} { return p.cs.dead }

// Close stops sending, DELETEs the WHIP resource (a 404 is not an error) and
// closes the peer connection. It waits for the Publisher's goroutines, and
// may be called more than once; later calls return the first one's result.
func (p *Publisher) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.cancel()
		p.writers.Wait()
		errDelete := p.sig.remove(ctx)
		errClose := p.pc.Close()
		p.readers.Wait()
		p.closeErr = errors.Join(errDelete, errClose)
	})
	return p.closeErr
}
