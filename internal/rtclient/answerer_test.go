package rtclient

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// answerer is a tiny WHIP/WHEP server for tests: a pion peer per POST that
// records the frames it receives (publish) or sends frames of its own or of
// a publisher it already has (subscribe), with the Location and Link
// headers IVS gives. It is deliberately built from pion's defaults, not this
// package's codec setup, so that the two must agree over SDP.
type answerer struct {
	t   *testing.T
	srv *httptest.Server

	// Set before use.
	token        string               // required bearer token; "" accepts any
	redirectHops int                  // POSTs are redirected this many times first
	redirectHost string               // host:port redirects go to ("" = the same)
	fail         func() (int, string) // if set, POSTs answer this status and body
	subSource    func(kind string) MediaSource
	tcpMux       ice.TCPMux // if set, answer with ICE-TCP candidates only

	mu          sync.Mutex
	closed      bool
	nextID      int
	sessions    map[string]*session // by resource id
	publishers  map[string]*session // publish sessions by participant id
	requests    []recordedRequest
	layerBodies []string
	playBodies  []string
	wg          sync.WaitGroup
}

type recordedRequest struct {
	Method, Path, Host string
	Header             http.Header
}

// session is one peer connection of the answerer.
type session struct {
	id, pid string
	publish bool
	pc      *webrtc.PeerConnection
	ctx     context.Context
	cancel  context.CancelFunc

	mu        sync.Mutex
	recv      map[string]*hashLog   // publish: kind (or video/<rid>) → frames received
	firstRTP  map[string]rtp.Header // publish: kind → header of the first packet received
	sent      map[string]*hashLog   // subscribe: kind → frames sent
	codecs    map[string]webrtc.RTPCodecCapability
	remote    map[string]*webrtc.TrackRemote
	forwards  map[string][]*webrtc.TrackLocalStaticRTP
	plis      atomic.Int64 // PLIs received from the subscriber
	connected chan struct{}
	connOnce  sync.Once
}

type hashLog struct {
	mu     sync.Mutex
	hashes [][32]byte
}

func (l *hashLog) add(h [32]byte) {
	l.mu.Lock()
	l.hashes = append(l.hashes, h)
	l.mu.Unlock()
}

func (l *hashLog) get() [][32]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][32]byte(nil), l.hashes...)
}

func newAnswerer(t *testing.T) *answerer {
	t.Helper()
	a := &answerer{t: t, sessions: map[string]*session{}, publishers: map[string]*session{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /publish/{pid}", a.handlePublish)
	mux.HandleFunc("POST /whip", a.handlePublish) // OBS-style bare endpoint
	mux.HandleFunc("POST /subscribe/{pid}", a.handleSubscribe)
	mux.HandleFunc("DELETE /resource/{id}", a.handleDelete)
	mux.HandleFunc("GET /layer/{id}", a.handleLayers)
	mux.HandleFunc("POST /layer/{id}", a.handleLayerPost)
	mux.HandleFunc("POST /playback/{id}", a.handlePlayback)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.requests = append(a.requests, recordedRequest{Method: r.Method, Path: r.URL.Path, Host: r.Host, Header: r.Header.Clone()})
		a.mu.Unlock()
		if a.token != "" && r.Header.Get("Authorization") != "Bearer "+a.token {
			http.Error(w, `{"code":2001}`, http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			hop, _ := strconv.Atoi(r.URL.Query().Get("hop"))
			if hop < a.redirectHops {
				host := a.redirectHost
				if host == "" {
					host = r.Host
				}
				q := r.URL.Query()
				q.Set("hop", strconv.Itoa(hop+1))
				w.Header().Set("Location", "http://"+host+r.URL.Path+"?"+q.Encode())
				w.WriteHeader(http.StatusTemporaryRedirect)
				return
			}
			if a.fail != nil {
				status, body := a.fail()
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_, _ = io.WriteString(w, body)
				return
			}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(a.close)
	return a
}

// whipURL is the whip_url claim for tokens of this server.
func (a *answerer) whipURL() string { return a.srv.URL }

func (a *answerer) close() {
	a.mu.Lock()
	a.closed = true
	sessions := make([]*session, 0, len(a.sessions))
	for _, s := range a.sessions {
		sessions = append(sessions, s)
	}
	a.mu.Unlock()
	for _, s := range sessions {
		s.cancel()
		_ = s.pc.Close()
	}
	a.srv.Close()
	a.wg.Wait()
}

// goroutine runs f on a goroutine the answerer waits for on close.
func (a *answerer) goroutine(f func()) {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return
	}
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		f()
	}()
}

func (a *answerer) newPeer() (*webrtc.PeerConnection, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if a.tcpMux != nil {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
		se.SetICETCPMux(a.tcpMux)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)).
		NewPeerConnection(webrtc.Configuration{})
}

func (a *answerer) newSession(pid string, publish bool) (*session, error) {
	pc, err := a.newPeer()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	a.nextID++
	s := &session{
		id: fmt.Sprintf("r%d", a.nextID), pid: pid, publish: publish, pc: pc, ctx: ctx, cancel: cancel,
		recv: map[string]*hashLog{}, sent: map[string]*hashLog{}, codecs: map[string]webrtc.RTPCodecCapability{},
		firstRTP: map[string]rtp.Header{},
		remote:   map[string]*webrtc.TrackRemote{}, forwards: map[string][]*webrtc.TrackLocalStaticRTP{},
		connected: make(chan struct{}),
	}
	a.sessions[s.id] = s
	if publish {
		a.publishers[pid] = s
	}
	a.mu.Unlock()
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			s.connOnce.Do(func() { close(s.connected) })
		}
	})
	return s, nil
}

// answer applies the offer, answers and writes the 201 with Location and Links.
func (a *answerer) answer(w http.ResponseWriter, r *http.Request, s *session) {
	offer, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/sdp" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ans, err := s.pc.CreateAnswer(nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	gathered := webrtc.GatheringCompletePromise(s.pc)
	if err := s.pc.SetLocalDescription(ans); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	<-gathered
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/resource/"+s.id)
	// Two links in one header, one in another: both forms must be read.
	w.Header().Add("Link", fmt.Sprintf(`</layer/%s>; rel="%s", <%s/playback/%s>; rel="%s"`, s.id, RelLayer, a.srv.URL, s.id, RelPlaybackControls))
	w.Header().Add("Link", fmt.Sprintf(`</resource/%s/delete>; rel="%s"`, s.id, RelSessionDelete))
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, s.pc.LocalDescription().SDP)
}

func (a *answerer) handlePublish(w http.ResponseWriter, r *http.Request) {
	pid := r.PathValue("pid")
	if pid == "" {
		pid = "whip"
	}
	s, err := a.newSession(pid, true)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.pc.OnTrack(func(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		kind := tr.Kind().String()
		if rid := tr.RID(); rid != "" {
			kind = SimulcastKind(rid)
		}
		log := &hashLog{}
		s.mu.Lock()
		s.recv[kind] = log
		s.codecs[kind] = tr.Codec().RTPCodecCapability
		s.remote[kind] = tr
		s.mu.Unlock()
		a.goroutine(func() { drainReceiverRTCP(recv, tr.RID()) })
		a.readTrack(s, kind, tr, log)
	})
	a.answer(w, r, s)
}

// readTrack rebuilds and hashes the frames of a publisher's track and
// forwards its packets to subscribers, until the connection closes.
func (a *answerer) readTrack(s *session, kind string, tr *webrtc.TrackRemote, log *hashLog) {
	mime := tr.Codec().MimeType
	sb := samplebuilder.New(512, depacketizer(mime), tr.Codec().ClockRate)
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		s.mu.Lock()
		fwd := s.forwards[kind]
		if _, ok := s.firstRTP[kind]; !ok {
			s.firstRTP[kind] = pkt.Header.Clone()
		}
		s.mu.Unlock()
		for _, f := range fwd {
			cp := *pkt
			cp.Header = pkt.Header.Clone()
			_ = f.WriteRTP(&cp)
		}
		sb.Push(pkt)
		for smp := sb.Pop(); smp != nil; smp = sb.Pop() {
			log.add(FrameHash(mime, smp.Data))
		}
	}
}

func drainReceiverRTCP(recv *webrtc.RTPReceiver, rid string) {
	for {
		var err error
		if rid == "" {
			_, _, err = recv.ReadRTCP()
		} else {
			_, _, err = recv.ReadSimulcastRTCP(rid)
		}
		if err != nil {
			return
		}
	}
}

func (a *answerer) handleSubscribe(w http.ResponseWriter, r *http.Request) {
	pid := r.PathValue("pid")
	a.mu.Lock()
	pub := a.publishers[pid]
	a.mu.Unlock()
	s, err := a.newSession(pid, false)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if pub != nil {
		// Loop the publisher's media back: forward its RTP as it comes.
		pub.mu.Lock()
		kinds := make(map[string]webrtc.RTPCodecCapability, len(pub.codecs))
		for k, c := range pub.codecs {
			kinds[k] = c
		}
		pub.mu.Unlock()
		for kind, codec := range kinds {
			if strings.Contains(kind, "/") {
				continue // simulcast layers are not forwarded here
			}
			codec.RTCPFeedback = nil
			tr, err := webrtc.NewTrackLocalStaticRTP(codec, kind, "fwd-"+pid)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			sender, err := s.pc.AddTrack(tr)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			a.goroutine(func() { a.readSenderRTCP(s, pub, kind, sender) })
			pub.mu.Lock()
			pub.forwards[kind] = append(pub.forwards[kind], tr)
			pub.mu.Unlock()
		}
		a.answer(w, r, s)
		return
	}
	if a.subSource == nil {
		http.Error(w, `{"code":2004}`, http.StatusNotFound)
		return
	}
	for _, kind := range []string{KindAudio, KindVideo} {
		src := a.subSource(kind)
		if src == nil {
			continue
		}
		tr, err := webrtc.NewTrackLocalStaticSample(src.Codec(), kind, "answerer")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		sender, err := s.pc.AddTrack(tr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		log := &hashLog{}
		s.mu.Lock()
		s.sent[kind] = log
		s.mu.Unlock()
		a.goroutine(func() { a.readSenderRTCP(s, nil, kind, sender) })
		a.goroutine(func() { a.sendFrames(s, src, tr, log) })
	}
	a.answer(w, r, s)
}

// readSenderRTCP reads what the subscriber sends about a track (so that
// pion's NACK responder works), counts PLIs and passes them on to the
// publisher when forwarding.
func (a *answerer) readSenderRTCP(s, pub *session, kind string, sender *webrtc.RTPSender) {
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); ok {
				s.plis.Add(1)
				if pub != nil {
					_ = a.sendPLI(pub, kind)
				}
			}
		}
	}
}

// sendPLI asks the publisher of a session for a keyframe of kind.
func (a *answerer) sendPLI(pub *session, kind string) error {
	pub.mu.Lock()
	tr := pub.remote[kind]
	pub.mu.Unlock()
	if tr == nil {
		return fmt.Errorf("no %s track", kind)
	}
	return pub.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(tr.SSRC())}})
}

// sendFrames sends a source's frames in real time once connected.
func (a *answerer) sendFrames(s *session, src MediaSource, tr *webrtc.TrackLocalStaticSample, log *hashLog) {
	select {
	case <-s.connected:
	case <-s.ctx.Done():
		return
	}
	mime := src.Codec().MimeType
	next := time.Now()
	for {
		f, err := src.NextFrame()
		if err != nil {
			return
		}
		if err := tr.WriteSample(media.Sample{Data: f.Data, Duration: f.Duration}); err != nil {
			return
		}
		log.add(FrameHash(mime, f.Data))
		next = next.Add(f.Duration)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(time.Until(next)):
		}
	}
}

func (a *answerer) handleDelete(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	s := a.sessions[r.PathValue("id")]
	delete(a.sessions, r.PathValue("id"))
	if s != nil && s.publish && a.publishers[s.pid] == s {
		delete(a.publishers, s.pid)
	}
	a.mu.Unlock()
	if s == nil {
		http.Error(w, `{"code":2004}`, http.StatusNotFound)
		return
	}
	s.cancel()
	_ = s.pc.Close()
	w.WriteHeader(http.StatusNoContent)
}

func (a *answerer) handleLayers(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"layers":[`+
		`{"encodingId":"hi","bitrate":2500000,"width":1280,"height":720,"framesPerSecond":30,"selected":true},`+
		`{"encodingId":"mid","bitrate":700000,"width":640,"height":360,"framesPerSecond":20,"selected":false},`+
		`{"encodingId":"low","bitrate":200000,"width":320,"height":180,"framesPerSecond":15,"selected":false}]}`)
}

func (a *answerer) handleLayerPost(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.layerBodies = append(a.layerBodies, string(body))
	a.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (a *answerer) handlePlayback(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.playBodies = append(a.playBodies, string(body))
	a.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// publisher returns the publish session of pid, waiting for it.
func (a *answerer) publisher(t *testing.T, pid string) *session {
	t.Helper()
	var s *session
	eventually(t, 10*time.Second, "publish session "+pid, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		s = a.publishers[pid]
		return s != nil
	})
	return s
}

// onlySubscriber returns the one subscribe session.
func (a *answerer) onlySubscriber(t *testing.T) *session {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var found *session
	for _, s := range a.sessions {
		if !s.publish {
			if found != nil {
				t.Fatal("more than one subscribe session")
			}
			found = s
		}
	}
	if found == nil {
		t.Fatal("no subscribe session")
	}
	return found
}

// received returns the frames a publish session received of kind.
// first returns the header of the first packet of kind received.
func (s *session) first(kind string) (rtp.Header, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.firstRTP[kind]
	return h, ok
}

func (s *session) received(kind string) [][32]byte {
	s.mu.Lock()
	l := s.recv[kind]
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.get()
}

// sentFrames returns the frames a subscribe session sent of kind.
func (s *session) sentFrames(kind string) [][32]byte {
	s.mu.Lock()
	l := s.sent[kind]
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.get()
}

func (a *answerer) recorded() []recordedRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]recordedRequest(nil), a.requests...)
}
