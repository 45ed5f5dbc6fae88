package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"
)

// Signalling that reaches a node not running the stage is forwarded to
// the node that runs it: the HTTP request (an SDP offer, or the events
// websocket's upgrade) is proxied, and the owner's answer comes back as
// is, with the owner's ICE candidates, so media flows straight between
// the client and the owner. A 307 redirect would be simpler, but browsers
// drop the Authorization header when they follow a redirect to another
// origin, so the official Web Broadcast SDK and Rostrum's library could
// not publish through it.

// ForwardedHeader marks a request one node forwarded to another: the
// receiving node serves it itself (no second placement, no loop). Its
// value proves the sender is a node of the cluster (an HMAC of the shared
// API secret), so that a client cannot make a node serve a stage it does
// not own.
const ForwardedHeader = "X-Rostrum-Forwarded"

// ResourcesPrefix is where WHIP/WHEP resources live; the forwarder names
// the node that holds each one in its id ("{node}~{id}"), so that a DELETE
// or a layer request reaching any node finds it.
const ResourcesPrefix = "/whip/resources/"

const resourceNodeSep = "~"

// ForwarderConfig configures a Forwarder.
type ForwarderConfig struct {
	Cluster *Cluster
	// Local serves what this node runs: the media endpoints.
	Local http.Handler
	// StageOf authenticates a participant token and returns its stage's
	// ARN; on error the request is left to Local, which answers it.
	StageOf func(ctx context.Context, token string) (string, error)
	// Secret is shared by every node (the API's secret access key): it
	// signs forwarded requests.
	Secret string
	// TookOver is called when a placement took a stage over from a node
	// whose lease expired.
	TookOver func(previous string)
	Logger   *slog.Logger
}

// Forwarder routes the media endpoints to the node that runs each stage.
type Forwarder struct {
	cfg   ForwarderConfig
	mark  string
	proxy *httputil.ReverseProxy
}

type proxyTarget struct {
	url  *url.URL
	path string // the path on the owner
	node string
}

type targetKey struct{}

// NewForwarder returns the forwarding handler.
func NewForwarder(cfg ForwarderConfig) *Forwarder {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := hmac.New(sha256.New, []byte(cfg.Secret))
	m.Write([]byte("rostrum cluster forwarding"))
	f := &Forwarder{cfg: cfg, mark: hex.EncodeToString(m.Sum(nil))}
	f.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(targetKey{}).(*proxyTarget)
			pr.SetURL(t.url)
			pr.Out.URL.Path, pr.Out.URL.RawPath = t.path, ""
			pr.Out.Host = t.url.Host
			pr.Out.Header.Set(ForwardedHeader, f.mark)
			// What the client said of itself stays its own.
			pr.Out.Header["User-Agent"] = pr.In.Header["User-Agent"]
		},
		ModifyResponse: func(resp *http.Response) error {
			t := resp.Request.Context().Value(targetKey{}).(*proxyTarget)
			tagResources(resp.Header, t.node)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			t := r.Context().Value(targetKey{}).(*proxyTarget)
			cfg.Logger.Warn("forwarding to the stage's node failed", "node", t.node, "path", r.URL.Path, "err", err)
			http.Error(w, "the node running this stage did not answer; try again", http.StatusServiceUnavailable)
		},
		ErrorLog: slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return f
}

func (f *Forwarder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if v := r.Header.Get(ForwardedHeader); v != "" {
		if hmac.Equal([]byte(v), []byte(f.mark)) {
			f.cfg.Local.ServeHTTP(w, r)
			return
		}
		http.Error(w, "forged "+ForwardedHeader+" header", http.StatusForbidden)
		return
	}
	self := f.cfg.Cluster.NodeID()
	if rest, ok := strings.CutPrefix(r.URL.Path, ResourcesPrefix); ok {
		f.resource(w, r, self, rest)
		return
	}
	if !joins(r) {
		f.cfg.Local.ServeHTTP(w, r)
		return
	}
	arn, err := f.cfg.StageOf(r.Context(), token(r))
	if err != nil {
		f.cfg.Local.ServeHTTP(w, r) // it answers the token's error
		return
	}
	pl, err := f.cfg.Cluster.Place(r.Context(), arn)
	if err != nil {
		f.cfg.Logger.Error("placing a stage", "stage", arn, "err", err)
		http.Error(w, "the stage could not be placed on a node; try again", http.StatusServiceUnavailable)
		return
	}
	if pl.Previous != "" && f.cfg.TookOver != nil {
		f.cfg.TookOver(pl.Previous)
	}
	if pl.Self {
		if r.Method == http.MethodPost {
			// Only POSTs create resources; the events websocket gets the
			// server's own writer, which it hijacks.
			w = &tagging{ResponseWriter: w, node: self}
		}
		f.cfg.Local.ServeHTTP(w, r)
		return
	}
	f.forward(w, r, pl.Node.ID, pl.Node.URL, r.URL.Path)
}

// resource serves a WHIP/WHEP resource path: here if this node holds it
// (or it names no node: a resource of before the cluster), else on the
// node that does.
func (f *Forwarder) resource(w http.ResponseWriter, r *http.Request, self, rest string) {
	tagged, tail, _ := strings.Cut(rest, "/")
	node, id, ok := strings.Cut(tagged, resourceNodeSep)
	if !ok {
		f.cfg.Local.ServeHTTP(w, r)
		return
	}
	path := ResourcesPrefix + id
	if tail != "" || strings.HasSuffix(rest, "/") {
		path += "/" + tail
	}
	if node != self {
		n, err := f.cfg.Cluster.Node(r.Context(), node)
		if err == nil && n != nil && n.Alive {
			f.forward(w, r, n.ID, n.URL, path)
			return
		}
		// A node that is gone took its resources with it: this node
		// answers that the resource is unknown.
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path, r2.URL.RawPath = path, ""
	f.cfg.Local.ServeHTTP(w, r2)
}

func (f *Forwarder) forward(w http.ResponseWriter, r *http.Request, node, rawURL, path string) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		f.cfg.Logger.Error("a node's URL does not parse", "node", node, "url", rawURL)
		http.Error(w, "the node running this stage has no usable URL", http.StatusServiceUnavailable)
		return
	}
	if isUpgrade(r) {
		// The events websocket outlives the server's request timeouts
		// once accepted, as it does when this node serves it.
		rc := http.NewResponseController(w)
		rc.SetReadDeadline(time.Time{})
		rc.SetWriteDeadline(time.Time{})
	}
	ctx := context.WithValue(r.Context(), targetKey{}, &proxyTarget{url: u, path: path, node: node})
	f.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// joins: the requests that join a participant to a stage, which run where
// the stage runs.
func joins(r *http.Request) bool {
	p := r.URL.Path
	switch r.Method {
	case http.MethodPost:
		return p == "/whip" || strings.HasPrefix(p, "/whip/publish/") || strings.HasPrefix(p, "/whip/subscribe/")
	case http.MethodGet:
		return p == "/events" || strings.HasPrefix(p, "/events/")
	}
	return false
}

func isUpgrade(r *http.Request) bool {
	return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// token is the participant token of a joining request: the bearer token,
// or the events websocket's subprotocol.
func token(r *http.Request) string {
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	for _, v := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				return p
			}
		}
	}
	return ""
}

// tagResources names node in the resource URLs of a created resource's
// Location and Link headers.
func tagResources(h http.Header, node string) {
	for _, k := range []string{"Location", "Link"} {
		vs := h.Values(k)
		if len(vs) == 0 {
			continue
		}
		h.Del(k)
		for _, v := range vs {
			h.Add(k, strings.ReplaceAll(v, ResourcesPrefix, ResourcesPrefix+node+resourceNodeSep))
		}
	}
}

// tagging tags the resources this node creates.
type tagging struct {
	http.ResponseWriter
	node    string
	written bool
}

func (t *tagging) WriteHeader(code int) {
	if !t.written {
		t.written = true
		tagResources(t.Header(), t.node)
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *tagging) Write(b []byte) (int, error) {
	if !t.written {
		t.WriteHeader(http.StatusOK)
	}
	return t.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (the events
// websocket hijacks it).
func (t *tagging) Unwrap() http.ResponseWriter { return t.ResponseWriter }
