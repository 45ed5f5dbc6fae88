// Package sfu is Rostrum's forwarding engine: it terminates WebRTC with
// publishers and subscribers (pion/webrtc v4) and forwards their RTP without
// transcoding. It knows nothing of stages, tokens or HTTP: the stage layer
// hands it SDP offers and gets answers and callbacks back.
//
// One Router serves one stage session. A Publisher is one participant's
// sending peer connection (WHIP); a Subscriber is one participant's receiving
// peer connection for one publisher (WHEP-shaped), as IVS's clients use them.
// A local Publisher is fed by Go code instead (RTMP ingest, replication).
// Subscribers run on the engine's own lean connections (lean.go: ICE-lite,
// DTLS for the handshake only, SRTP on the engine's sockets) rather than on
// a pion peer connection where their offers allow.
package sfu

import (
	"errors"
	"log/slog"
)

// Errors the signalling layer maps to IVS's HTTP error codes.
var (
	ErrBadOffer          = errors.New("sfu: the SDP offer cannot be parsed or has no usable media section")
	ErrNoMatchingCodec   = errors.New("sfu: no codec in the offer is supported (Opus, H.264 constrained baseline with packetization-mode 1, VP8)")
	ErrPublisherNotFound = errors.New("sfu: no such publisher in this session")
	ErrClosed            = errors.New("sfu: closed")
	ErrUnknownMedia      = errors.New("sfu: no such media section or encoding")
)

// Config configures the Engine; it is shared by every router.
type Config struct {
	// UDPPort is the one UDP port all ICE traffic uses (0 = any free port).
	UDPPort int
	// TCPPort is the one port for ICE over TCP, for clients that cannot use
	// UDP (0 = any free port, -1 = no TCP candidates).
	TCPPort int
	// ListenIP is the address both listen on ("" = all interfaces).
	ListenIP string
	// PublicIPs are advertised as host candidates instead of the interface
	// addresses (for hosts behind 1:1 NAT). Empty: the interface addresses,
	// loopback included.
	PublicIPs []string
	// UDPReadBuffer is the receive buffer, in bytes, asked for the ICE
	// UDP socket (0 = 8 MiB, -1 = the system's default). See sockbuf.go.
	UDPReadBuffer int
	// FanoutWorkers spread one packet's fan-out to many subscribers over
	// cores (spread.go): 0 = one fewer than GOMAXPROCS, -1 = none (every
	// publisher's encoding fans out on its own goroutine alone).
	FanoutWorkers int
	// PionSendPath sends every subscriber's packets through pion's SRTP
	// session and ICE connection instead of the engine's own send path
	// (direct.go): for comparing the two, or should a client ever fail
	// on the direct path.
	PionSendPath bool
	// OneByOne sends subscribers one packet per system call, even when a
	// publisher's packets come in bursts (direct.go's batched sends): for
	// comparing the two.
	OneByOne bool
	// LeanSubscribers runs the connections of subscribers that need no
	// congestion controller on the engine's own ICE-lite, DTLS and SRTP
	// (lean.go) instead of pion's peer connection, where the offer allows.
	LeanSubscribers bool
	Logger          *slog.Logger
}

// Kind is a media kind.
type Kind string

const (
	Audio Kind = "audio"
	Video Kind = "video"
)

// TrackInfo describes one published track.
type TrackInfo struct {
	Kind      Kind
	MID       string
	Codec     string   // "opus", "H264", "VP8" (MIME subtype)
	Layers    []string // simulcast rids, e.g. ["hi","mid","low"]; empty when not simulcast
	Simulcast bool
}

// LayerInfo is one simulcast encoding as the WHEP layer extension reports it.
type LayerInfo struct {
	EncodingID      string  `json:"encodingId"`
	Bitrate         int     `json:"bitrate"` // measured, bits per second
	Width           int     `json:"width,omitempty"`
	Height          int     `json:"height,omitempty"`
	FramesPerSecond float64 `json:"framesPerSecond,omitempty"`
	Selected        bool    `json:"selected"`
}

// PublisherCallbacks tell the stage layer what a publisher does. They are
// called from the engine's goroutines and must not block.
type PublisherCallbacks struct {
	// OnMedia is called once, when the first RTP packet of the publisher
	// arrives (it is then "publishing" in IVS's sense).
	OnMedia func()
	// OnClosed is called once when the publisher is gone: closed by Close,
	// by the remote, or failed (err says why; nil for Close).
	OnClosed func(err error)
}

// SubscribeOptions configure a subscriber.
type SubscribeOptions struct {
	// InitialLayer is "highest" or "lowest" (IVS's
	// X-Stages-Initial-Layer-Pref); "" lets bandwidth decide from the lowest.
	InitialLayer string
	// OnClosed is called once when the subscriber is gone (err as above).
	OnClosed func(err error)
}

// Engine and its API are implemented in engine.go:
//
//	func NewEngine(cfg Config) (*Engine, error)
//	func (e *Engine) Close() error
//	func (e *Engine) NewRouter(id string) *Router
//	func (r *Router) Publish(ctx context.Context, publisherID, offer string, cb PublisherCallbacks) (*Publisher, string, error)
//	func (r *Router) Subscribe(ctx context.Context, subscriberID, publisherID, offer string, opts SubscribeOptions) (*Subscriber, string, error)
//	func (r *Router) PublishLocal(publisherID string, tracks []LocalTrack, opts LocalPublisherOptions) (*Publisher, error)  // local.go
//	func (r *Router) Publisher(id string) *Publisher
//	func (r *Router) Close() error
//	func (p *Publisher) ID() string
//	func (p *Publisher) Tracks() []TrackInfo
//	func (p *Publisher) WriteRTP(track int, h *rtp.Header, payload []byte) error  // local publishers
//	func (p *Publisher) SetSenderReport(track int, ntp uint64, rtpTime uint32)    // local publishers
//	func (p *Publisher) Close() error
//	func (s *Subscriber) Layers() map[string][]LayerInfo   // by MID of the subscriber's video section
//	func (s *Subscriber) PinLayer(mid, encodingID string) error
//	func (s *Subscriber) UnpinLayer(mid string) error
//	func (s *Subscriber) Pause(mids []string) error
//	func (s *Subscriber) Play(mids []string) error
//	func (s *Subscriber) Close() error
