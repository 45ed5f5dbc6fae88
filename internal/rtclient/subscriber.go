package rtclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// ErrNoTrack is returned for a kind the Subscriber has no (remote) track of.
var ErrNoTrack = errors.New("rtclient: no such track")

// Frame rebuilding: how many packets the sample builder waits for a missing
// one, and how much media time at most, before it gives up on the frame.
// Long enough for a few NACK rounds.
const (
	sampleMaxLate  = 512
	sampleMaxDelay = time.Second
)

// SubscribeOptions configure Subscribe.
type SubscribeOptions struct {
	// URL is the full URL to POST the offer to. "" means
	// TokenInfo.WhipURL + "/subscribe/" + PublisherID, as the Web SDK does.
	URL string
	// PublisherID is the participant to subscribe to.
	PublisherID string
	// HTTPClient makes the requests; nil means http.DefaultClient.
	// Redirects are followed as by Publish.
	HTTPClient *http.Client
	// Header holds extra headers for every request.
	Header http.Header
	// InitialLayer, if set, is sent as X-Stages-Initial-Layer-Pref: the Web
	// SDK sends "highest" or "lowest".
	InitialLayer string
	// Drop is a test hook called with each incoming media packet (not RTX)
	// before NACK handling; returning true discards the packet as if the
	// network lost it, so that the NACK generator asks for it again. A
	// retransmission on the media SSRC is offered to Drop again; one on an
	// RTX stream is not. It runs on the track's read goroutine and must be
	// safe for concurrent use by the audio and video goroutines.
	Drop func(kind string, seq uint16) bool
	// ICETransport restricts local candidates: "" (any), "udp" or "tcp".
	ICETransport string
	// LoopbackOnly gathers only loopback candidates.
	LoopbackOnly bool
	// SettingEngine, if set, is called last on the pion SettingEngine.
	SettingEngine func(*webrtc.SettingEngine)
	// Certificates, if set, is the DTLS certificate instead of a new one
	// per connection: a load generator's many clients share one, as each
	// real client has one of its own already (its key costs the generator,
	// not the server, CPU at every join).
	Certificates []webrtc.Certificate
	// NoFrames turns off frame rebuilding and hashing: only packet counters
	// run. A pion sample builder holds 1 MiB of state per track; load
	// generation with many subscribers wants this.
	NoFrames bool
	// OnPacket, if set, is called with each RTP packet read (after Drop and
	// NACK handling, retransmissions included), decrypted, with the time it
	// was read. packet is valid only during the call. It runs on the track's
	// read goroutine, once per packet, so it must be cheap and safe for
	// concurrent use by the audio and video goroutines. A load generator
	// reads SyntheticPacketSent from it.
	OnPacket func(kind string, packet []byte, arrival time.Time)
}

// Subscriber is one subscribe session. Its methods are safe for concurrent use.
type Subscriber struct {
	info     TokenInfo
	pc       *webrtc.PeerConnection
	cs       *connState
	sig      *signaller
	tap      *receiveTap
	noFrames bool
	onPacket func(kind string, packet []byte, arrival time.Time)

	tracks map[string]*subTrack // by kind: "audio", "video"
	mids   map[string]string    // kind → mid

	nackKick chan struct{} // wakes nackLoop
	stop     chan struct{} // closed by Close

	mu     sync.Mutex // guards closed and adding to wg
	closed bool
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// subTrack is what a Subscriber knows of one kind.
type subTrack struct {
	kind string
	log  frameLog

	mu          sync.Mutex
	mime        string
	ssrc        uint32
	packets     int64
	bytes       int64
	duplicates  int64
	gaps        int64 // sequence numbers skipped when a higher one came
	filled      int64 // packets that came after a higher one
	firstPacket time.Time
	lastPacket  time.Time
	seq         seqTracker
	nack        *nackList     // nil unless NACK was negotiated for the track
	ready       chan struct{} // closed when the remote track arrives
}

// TrackStats are the counters of one kind a Subscriber receives.
type TrackStats struct {
	MimeType string // codec of the remote track; "" before it arrives
	SSRC     uint32

	Packets     int64     // RTP packets read (after Drop), retransmissions and duplicates included
	Bytes       int64     // their size, RTP headers included
	Duplicates  int64     // packets whose sequence number had already been read
	Lost        int64     // sequence numbers between the first and the highest read that never arrived (gaps not recovered)
	Late        int64     // packets too far behind the highest to be counted (over 4096 sequence numbers)
	Dropped     int64     // packets discarded by SubscribeOptions.Drop
	NACKs       int64     // RTCP NACK packets sent for this track
	NACKedSeqs  int64     // sequence numbers asked for in them
	PLIs        int64     // PLIs sent for this track (by SendPLI: the Subscriber sends none of its own)
	FirstPacket time.Time // when the first packet arrived
	LastPacket  time.Time // when the latest packet arrived
	// HighestSeq is the highest sequence number read, unwrapped to 64 bits
	// (the first packet's number plus 65,536 per wrap since).
	HighestSeq int64
	// Gaps counts the sequence numbers skipped when a higher one arrived:
	// packets that did not come the first time, whether NACK brought them
	// later or not ("raw gaps"). Filled counts the packets that came after
	// a higher one: repairs (and reordering).
	Gaps, Filled int64

	Frames     int64     // frames rebuilt (0 with NoFrames)
	FrameBytes int64     // their size
	Keyframes  int64     // keyframes among them
	FirstFrame time.Time // when the first was rebuilt
}

// Layer is one simulcast layer of the publisher, as the layer link lists it.
type Layer struct {
	EncodingID      string  `json:"encodingId"`
	Bitrate         int64   `json:"bitrate"`
	Width           int     `json:"width"`
	Height          int     `json:"height"`
	FramesPerSecond float64 `json:"framesPerSecond"`
	Selected        bool    `json:"selected"`
}

// Subscribe subscribes to opts.PublisherID's media: it offers to receive one
// audio and one video track, POSTs the offer like Publish, and waits until
// the peer connection is connected. Media is then read, counted and (unless
// NoFrames) rebuilt into frames until Close. ctx bounds only the setup.
func Subscribe(ctx context.Context, token string, opts SubscribeOptions) (*Subscriber, error) {
	info, err := ParseToken(token)
	if err != nil {
		return nil, err
	}
	target := opts.URL
	if target == "" {
		if info.WhipURL == "" || opts.PublisherID == "" {
			return nil, errors.New("rtclient: give URL, or a token with whip_url and PublisherID")
		}
		target = strings.TrimRight(info.WhipURL, "/") + "/subscribe/" + url.PathEscape(opts.PublisherID)
	}
	tap := newReceiveTap(opts.Drop)
	pc, err := newPeerConnection(peerConfig{
		iceTransport: opts.ICETransport, loopbackOnly: opts.LoopbackOnly,
		settings: opts.SettingEngine, first: []interceptor.Interceptor{tap},
		certificates: opts.Certificates,
	})
	if err != nil {
		return nil, err
	}
	s := &Subscriber{
		info: info, pc: pc, cs: watchConnection(pc), tap: tap, noFrames: opts.NoFrames, onPacket: opts.OnPacket,
		sig:      newSignaller(opts.HTTPClient, token, opts.Header),
		tracks:   map[string]*subTrack{},
		mids:     map[string]string{},
		nackKick: make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	fail := func(err error) (*Subscriber, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = s.Close(cctx)
		return nil, err
	}
	transceivers := map[string]*webrtc.RTPTransceiver{}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		tr, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
		if err != nil {
			_ = pc.Close()
			return nil, err
		}
		transceivers[kind.String()] = tr
		s.tracks[kind.String()] = &subTrack{kind: kind.String(), ready: make(chan struct{})}
	}
	pc.OnTrack(s.onTrack)
	s.wg.Add(1)
	go s.nackLoop()

	var hdr http.Header
	if opts.InitialLayer != "" {
		hdr = http.Header{"X-Stages-Initial-Layer-Pref": {opts.InitialLayer}}
	}
	if err := negotiate(ctx, pc, s.cs, s.sig, target, hdr, nil); err != nil {
		return fail(err)
	}
	for kind, tr := range transceivers {
		s.mids[kind] = tr.Mid()
	}
	return s, nil
}

// onTrack runs (on its own goroutine, started by pion) for each remote track.
func (s *Subscriber) onTrack(track *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.wg.Add(2)
	s.mu.Unlock()
	go s.drainRTCP(recv, track.RID())
	s.readTrack(track)
}

// drainRTCP reads the RTCP the server sends about a track (sender reports),
// so that pion's interceptors see it.
func (s *Subscriber) drainRTCP(recv *webrtc.RTPReceiver, rid string) {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	for {
		var err error
		if rid == "" {
			_, _, err = recv.Read(buf)
		} else {
			_, _, err = recv.ReadSimulcast(buf, rid)
		}
		if errors.Is(err, io.ErrShortBuffer) {
			continue
		}
		if err != nil {
			return
		}
	}
}

// depacketizer returns pion's depacketizer for a codec, nil if there is none.
func depacketizer(mimeType string) rtp.Depacketizer {
	switch strings.ToLower(mimeType) {
	case strings.ToLower(webrtc.MimeTypeOpus):
		return &codecs.OpusPacket{}
	case strings.ToLower(webrtc.MimeTypeVP8):
		return &codecs.VP8Packet{}
	case strings.ToLower(webrtc.MimeTypeH264):
		return &codecs.H264Packet{}
	case strings.ToLower(webrtc.MimeTypeVP9):
		return &codecs.VP9Packet{}
	}
	return nil
}

// readTrack reads one remote track until the connection closes.
//
// Hot path: once per packet received.
func (s *Subscriber) readTrack(track *webrtc.TrackRemote) {
	defer s.wg.Done()
	kind := track.Kind().String()
	st := s.tracks[kind]
	if st == nil {
		return
	}
	mime := track.Codec().MimeType
	st.mu.Lock()
	if st.mime != "" {
		// A second track of a kind already received: not something this
		// client asked for. Leave it unread.
		st.mu.Unlock()
		return
	}
	st.mime, st.ssrc = mime, uint32(track.SSRC())
	for _, fb := range track.Codec().RTCPFeedback {
		if fb.Type == "nack" && fb.Parameter == "" {
			st.nack = newNACKList()
		}
	}
	st.mu.Unlock()
	close(st.ready)

	var sb *samplebuilder.SampleBuilder
	if d := depacketizer(mime); d != nil && !s.noFrames {
		sb = samplebuilder.New(sampleMaxLate, d, track.Codec().ClockRate, samplebuilder.WithMaxTimeDelay(sampleMaxDelay))
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := track.Read(buf)
		if errors.Is(err, io.ErrShortBuffer) {
			continue // bigger than the receive MTU: lost, like on the wire
		}
		if err != nil {
			return
		}
		if n < 12 {
			continue
		}
		now := time.Now()
		if st.onPacket(binary.BigEndian.Uint16(buf[2:4]), n, now) {
			s.kickNACK()
		}
		if s.onPacket != nil {
			s.onPacket(kind, buf[:n], now)
		}
		if sb == nil {
			continue
		}
		pkt := &rtp.Packet{}
		if err := pkt.Unmarshal(append([]byte(nil), buf[:n]...)); err != nil {
			continue
		}
		sb.Push(pkt)
		for smp := sb.Pop(); smp != nil; smp = sb.Pop() {
			if len(smp.Data) == 0 {
				continue
			}
			st.log.add(FrameHash(mime, smp.Data), true, len(smp.Data), isKeyframe(mime, smp.Data), now)
		}
	}
}

// onPacket counts a packet and notes gaps to NACK. It reports whether a new
// gap appeared.
func (st *subTrack) onPacket(seq uint16, size int, now time.Time) (gap bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.packets == 0 {
		st.firstPacket = now
	}
	st.lastPacket = now
	st.packets++
	st.bytes += int64(size)
	res, ext, prev := st.seq.add(seq)
	switch res {
	case seqDuplicate:
		st.duplicates++
	case seqNew:
		if ext > prev+1 {
			st.gaps += ext - prev - 1
		} else if ext < prev {
			st.filled++
		}
		if st.nack != nil {
			if ext > prev+1 {
				gap = st.nack.gap(prev+1, ext, now)
			} else if ext < prev {
				st.nack.fill(ext)
			}
		}
	case seqJump:
		// Far beyond anything NACK could recover: what was pending is moot.
		if st.nack != nil {
			st.nack.clear()
		}
	}
	return gap
}

func (s *Subscriber) track(kind string) (*subTrack, error) {
	st := s.tracks[kind]
	if st == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoTrack, kind)
	}
	return st, nil
}

// Token is what the Subscriber's token says.
func (s *Subscriber) Token() TokenInfo { return s.info }

// Location is the URL of the subscribe resource.
func (s *Subscriber) Location() string { return s.sig.location }

// Links returns the answer's Link headers, rel → absolute URL.
func (s *Subscriber) Links() map[string]string { return s.sig.copyLinks() }

// PeerConnection is the underlying pion peer connection.
func (s *Subscriber) PeerConnection() *webrtc.PeerConnection { return s.pc }

// Mid is the media id of the transceiver of kind ("audio" or "video").
func (s *Subscriber) Mid(kind string) string { return s.mids[kind] }

// ReceivedFrames returns the FrameHash of each frame rebuilt of kind, in
// order: the last MaxFrameLog of them.
func (s *Subscriber) ReceivedFrames(kind string) [][32]byte {
	st, err := s.track(kind)
	if err != nil {
		return nil
	}
	return st.log.hashes()
}

// Stats returns the counters of kind.
func (s *Subscriber) Stats(kind string) TrackStats {
	st, err := s.track(kind)
	if err != nil {
		return TrackStats{}
	}
	var ts TrackStats
	st.mu.Lock()
	ts.MimeType, ts.SSRC = st.mime, st.ssrc
	ts.Packets, ts.Bytes, ts.Duplicates, ts.Late = st.packets, st.bytes, st.duplicates, st.seq.late
	ts.Lost = st.seq.lost()
	ts.Gaps, ts.Filled = st.gaps, st.filled
	ts.FirstPacket, ts.LastPacket = st.firstPacket, st.lastPacket
	ts.HighestSeq = st.seq.highest
	st.mu.Unlock()
	c := s.tap.counters(kind)
	ts.Dropped, ts.NACKs, ts.NACKedSeqs, ts.PLIs = c.dropped.Load(), c.nacks.Load(), c.nacked.Load(), c.plis.Load()
	ts.Frames, ts.FrameBytes, ts.Keyframes, ts.FirstFrame = st.log.counts()
	return ts
}

// WaitFrames waits until n frames of kind have been rebuilt in all, or ctx
// ends, or the connection dies.
func (s *Subscriber) WaitFrames(ctx context.Context, kind string, n int) error {
	st, err := s.track(kind)
	if err != nil {
		return err
	}
	reached, forget := st.log.wait(int64(n))
	defer forget()
	select {
	case <-reached:
		return nil
	case <-ctx.Done():
		f, _, _, _ := st.log.counts()
		return fmt.Errorf("rtclient: %d of %d %s frames: %w", f, n, kind, ctx.Err())
	case <-s.cs.dead:
		if f, _, _, _ := st.log.counts(); f >= int64(n) {
			return nil
		}
		return fmt.Errorf("rtclient: waiting for %s frames: %w", kind, ErrClosed)
	}
}

// SendPLI asks the server for a video keyframe.
func (s *Subscriber) SendPLI() error {
	st := s.tracks[KindVideo]
	select {
	case <-st.ready:
	default:
		return fmt.Errorf("%w: no video yet", ErrNoTrack)
	}
	st.mu.Lock()
	ssrc := st.ssrc
	st.mu.Unlock()
	return s.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
}

// Layers GETs the layer link: the publisher's simulcast layers.
func (s *Subscriber) Layers(ctx context.Context) ([]Layer, error) {
	var out struct {
		Layers []Layer `json:"layers"`
	}
	if err := s.sig.linkJSON(ctx, RelLayer, nil, &out); err != nil {
		return nil, err
	}
	return out.Layers, nil
}

// PinLayer POSTs {"mediaId":mid,"encodingId":encodingID} to the layer link,
// pinning the layer the server forwards. mid "" means the video track's.
func (s *Subscriber) PinLayer(ctx context.Context, mid, encodingID string) error {
	if mid == "" {
		mid = s.mids[KindVideo]
	}
	return s.sig.linkJSON(ctx, RelLayer, map[string]string{"mediaId": mid, "encodingId": encodingID}, nil)
}

// Unpin lets the server choose layers again. With mid "" it POSTs {} to the
// layer link, as the Web SDK does; otherwise {"mediaId":mid}.
func (s *Subscriber) Unpin(ctx context.Context, mid string) error {
	body := map[string]string{}
	if mid != "" {
		body["mediaId"] = mid
	}
	return s.sig.linkJSON(ctx, RelLayer, body, nil)
}

// Pause POSTs {"pause":[mids]} to the playback-controls link; no mids means
// all of the Subscriber's.
func (s *Subscriber) Pause(ctx context.Context, mids ...string) error {
	return s.sig.linkJSON(ctx, RelPlaybackControls, map[string][]string{"pause": s.orAllMids(mids)}, nil)
}

// Play POSTs {"play":[mids]} to the playback-controls link; no mids means
// all of the Subscriber's.
func (s *Subscriber) Play(ctx context.Context, mids ...string) error {
	return s.sig.linkJSON(ctx, RelPlaybackControls, map[string][]string{"play": s.orAllMids(mids)}, nil)
}

func (s *Subscriber) orAllMids(mids []string) []string {
	if len(mids) > 0 {
		return mids
	}
	for _, k := range []string{KindAudio, KindVideo} {
		if m := s.mids[k]; m != "" {
			mids = append(mids, m)
		}
	}
	return mids
}

// Done is closed when the peer connection has failed or closed.
func (s *Subscriber) Done() <-chan struct{} { return s.cs.dead }

// Close DELETEs the subscribe resource (a 404 is not an error), closes the
// peer connection and waits for the Subscriber's goroutines. It may be
// called more than once; later calls return the first one's result.
func (s *Subscriber) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		errDelete := s.sig.remove(ctx)
		errClose := s.pc.Close()
		s.wg.Wait()
		s.closeErr = errors.Join(errDelete, errClose)
	})
	return s.closeErr
}
