// Package signal is the media plane's transport: the WHIP endpoint that
// publishers POST SDP offers to, the WHEP-shaped subscribe endpoint, the
// resources they create (DELETE, layers, playback control, the
// session-delete beacon) and the stage events websocket. It speaks IVS's
// protocol (docs/protocol.md) and leaves every decision to internal/stage.
package signal

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/stage"
)

// maxOfferBytes bounds an SDP offer. A browser's simulcast offer with every
// codec it knows is under 10 KiB.
const maxOfferBytes = 64 << 10

// The paths of the media endpoints. Tokens carry them (Endpoints), the
// server routes them here (Prefixes), and this package serves them: they
// are written only here.
const (
	whipPath      = "/whip"
	eventsPath    = "/events"
	resourcesPath = whipPath + "/resources/"
)

// Prefixes are the paths (ServeMux patterns) the server hands to this
// handler.
var Prefixes = []string{whipPath, whipPath + "/", eventsPath, eventsPath + "/"}

// Endpoints are the media endpoints under a server's public base URL, as
// participant tokens carry them.
func Endpoints(base string) ivs.Endpoints {
	ws := "ws" + strings.TrimPrefix(base, "http")
	return ivs.Endpoints{Events: ws + eventsPath, WHIP: base + whipPath}
}

// offerTimeout bounds the media negotiation of one POST.
const offerTimeout = 10 * time.Second

// Handler serves the media endpoints under /whip and /events.
type Handler struct {
	stages *stage.Manager
	log    *slog.Logger
	mux    *http.ServeMux
}

// New returns the media endpoints' handler.
func New(stages *stage.Manager, log *slog.Logger) *Handler {
	h := &Handler{stages: stages, log: log, mux: http.NewServeMux()}
	h.mux.HandleFunc("POST "+whipPath, h.publish)
	h.mux.HandleFunc("POST "+whipPath+"/publish/{participant}", h.publish)
	h.mux.HandleFunc("POST "+whipPath+"/subscribe/{publisher}", h.subscribe)
	h.mux.HandleFunc("DELETE "+resourcesPath+"{id}", h.deleteResource)
	h.mux.HandleFunc("PATCH "+resourcesPath+"{id}", h.patchResource)
	h.mux.HandleFunc("POST "+resourcesPath+"{id}/session-delete", h.sessionDelete)
	h.mux.HandleFunc("GET "+resourcesPath+"{id}/layers", h.getLayers)
	h.mux.HandleFunc("POST "+resourcesPath+"{id}/layers", h.setLayer)
	h.mux.HandleFunc("POST "+resourcesPath+"{id}/playback", h.playback)
	h.mux.HandleFunc("OPTIONS "+whipPath, h.preflight)
	h.mux.HandleFunc("OPTIONS "+whipPath+"/", h.preflight)
	h.mux.HandleFunc("GET "+eventsPath, h.events)
	h.mux.HandleFunc("GET "+eventsPath+"/{topic...}", h.events)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setCORS(w.Header(), r)
	defer func() {
		// A bug in one request must not take the server down.
		if p := recover(); p != nil {
			h.log.Error("panic in media endpoint", "path", r.URL.Path, "panic", p)
			writeError(w, http.StatusInternalServerError, 2006, "internal error")
		}
	}()
	h.mux.ServeHTTP(w, r)
}

// CORS as the WHIP/WHEP drafts describe, with IVS's X-Stages-* headers, so
// browser apps on other origins use these endpoints directly.
func setCORS(h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	h.Set("Access-Control-Expose-Headers", "Location, Link, ETag, Accept-Patch, Content-Type")
}

func (h *Handler) preflight(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Methods", "POST, GET, DELETE, PATCH, OPTIONS")
	hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match, X-Stages-Platform, X-Stages-SDK, X-Stages-Request-ID, X-Stages-Session-ID, X-Stages-Trace-ID, X-Stages-WHIP-Version, X-Stages-Options, X-Stages-Initial-Layer-Pref")
	hd.Set("Access-Control-Max-Age", "600")
	hd.Set("Accept-Post", "application/sdp")
	w.WriteHeader(http.StatusNoContent)
}

// bearer returns the participant token of an Authorization header.
func bearer(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// readOffer reads an application/sdp body.
func readOffer(w http.ResponseWriter, r *http.Request) (string, bool) {
	ct := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("Content-Type"), ";")[0]))
	if ct != "application/sdp" {
		writeError(w, http.StatusUnsupportedMediaType, 2001, "the offer must be sent as Content-Type: application/sdp")
		return "", false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOfferBytes+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, 2001, "could not read the offer")
		return "", false
	}
	if len(body) > maxOfferBytes {
		writeError(w, http.StatusRequestEntityTooLarge, 2001, fmt.Sprintf("the offer is larger than %d KiB", maxOfferBytes>>10))
		return "", false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		writeError(w, http.StatusBadRequest, 2011, "the request has no SDP offer")
		return "", false
	}
	return string(body), true
}

var (
	chromeRE  = regexp.MustCompile(`(?:Chrome|Chromium|CriOS)/([0-9.]+)`)
	firefoxRE = regexp.MustCompile(`Firefox/([0-9.]+)`)
	safariRE  = regexp.MustCompile(`Version/([0-9.]+).*Safari/`)
	edgeRE    = regexp.MustCompile(`Edg/([0-9.]+)`)
	unsafeRE  = regexp.MustCompile(`[^a-zA-Z0-9\-_.,:;\s]`)
)

// clientInfo is what the request says of its client, kept within the
// model's pattern for client attributes.
func clientInfo(r *http.Request) stage.ClientInfo {
	clean := func(s string) string {
		s = unsafeRE.ReplaceAllString(s, "")
		if len(s) > 128 {
			s = s[:128]
		}
		return s
	}
	ci := stage.ClientInfo{Protocol: "WHIP", SDKVersion: clean(r.Header.Get("X-Stages-SDK"))}
	ua := r.UserAgent()
	switch {
	case edgeRE.MatchString(ua):
		ci.BrowserName, ci.BrowserVersion = "Edge", edgeRE.FindStringSubmatch(ua)[1]
	case chromeRE.MatchString(ua):
		ci.BrowserName, ci.BrowserVersion = "Chrome", chromeRE.FindStringSubmatch(ua)[1]
	case firefoxRE.MatchString(ua):
		ci.BrowserName, ci.BrowserVersion = "Firefox", firefoxRE.FindStringSubmatch(ua)[1]
	case safariRE.MatchString(ua):
		ci.BrowserName, ci.BrowserVersion = "Safari", safariRE.FindStringSubmatch(ua)[1]
	}
	switch {
	case strings.Contains(ua, "Android"):
		ci.OSName = "Android"
	case strings.Contains(ua, "iPhone"), strings.Contains(ua, "iPad"):
		ci.OSName = "iOS"
	case strings.Contains(ua, "Windows"):
		ci.OSName = "Windows"
	case strings.Contains(ua, "Mac OS X"):
		ci.OSName = "macOS"
	case strings.Contains(ua, "Linux"):
		ci.OSName = "Linux"
	}
	ci.BrowserName, ci.BrowserVersion, ci.OSName = clean(ci.BrowserName), clean(ci.BrowserVersion), clean(ci.OSName)
	return ci
}

func negotiationContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), offerTimeout)
}
