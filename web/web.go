// Package web serves Rostrum's browser side, embedded in the binary: the
// stage client library under /sdk/ (one ES module, rostrum-stages.js, with
// its TypeScript declarations) and the demo page under /demo/. When it is
// enabled, it also serves the development token endpoint under /dev/, which
// creates stages and participant tokens for the demo without AWS
// credentials (devtokens.go). It is off unless --dev-token-endpoint is set.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/rostrum-dev/rostrum/internal/ivs"
)

//go:embed sdk demo
var files embed.FS

// Paths are the route patterns the handler serves; the server mounts each.
var Paths = []string{"/sdk/", "/demo", "/demo/", "/dev/"}

// Options configure the handler.
type Options struct {
	// DevTokens enables the development token endpoint when it is not nil:
	// anyone who reaches the server can then create stages and participant
	// tokens through it. Never enable it on a reachable network.
	DevTokens *ivs.Service
	Logger    *slog.Logger
}

// Handler serves /sdk/, /demo/ and, when enabled, /dev/.
type Handler struct {
	files map[string]file
	dev   *devTokens
	log   *slog.Logger
}

type file struct {
	body        []byte
	etag        string
	contentType string
}

// New returns the handler. With the development token endpoint enabled it
// says so loudly in the log.
func New(opts Options) *Handler {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	h := &Handler{files: map[string]file{}, log: log}
	fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js", ".mjs":
			ct = "text/javascript; charset=utf-8"
		case ".ts":
			ct = "application/typescript; charset=utf-8"
		case ".json":
			ct = "application/json; charset=utf-8"
		}
		if ct == "" {
			ct = "application/octet-stream"
		}
		h.files["/"+p] = file{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, contentType: ct}
		return nil
	})
	if opts.DevTokens != nil {
		h.dev = &devTokens{svc: opts.DevTokens, log: log}
		log.Warn("DEVELOPMENT TOKEN ENDPOINT ENABLED: anyone who can reach /dev/ can create stages and participant tokens " +
			"without credentials. Use it only on a development machine (--dev-token-endpoint=false turns it off).")
	}
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/demo":
		http.Redirect(w, r, "/demo/", http.StatusMovedPermanently)
		return
	case strings.HasPrefix(p, "/dev/"):
		if h.dev == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{
				"message": "the development token endpoint is off: start rostrum serve with --dev-token-endpoint to enable it (development only)",
			})
			return
		}
		h.dev.ServeHTTP(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if strings.HasSuffix(p, "/") {
		p += "index.html"
	}
	f, ok := h.files[p]
	if !ok {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.contentType)
	hd.Set("ETag", f.etag)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	if strings.HasPrefix(p, "/sdk/") {
		// The library is imported by apps on other origins; module scripts
		// need CORS.
		hd.Set("Access-Control-Allow-Origin", "*")
	}
	http.ServeContent(w, r, path.Base(p), zeroTime, bytes.NewReader(f.body))
}
