package rtclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Link relations of IVS's media endpoints (IVS-BEHAVIOUR.md §2.2). Links of a
// Publisher or Subscriber are keyed by these.
const (
	RelSessionDelete    = "urn:ietf:params:whip:ivs-stages:session-delete"
	RelPlaybackControls = "urn:ietf:params:whep:core:playback-controls"
	RelLayer            = "urn:ietf:params:whep:ext:core:layer"
)

// Values of the headers this client sends with every media request.
const (
	// SDKName is sent as X-Stages-SDK (the Web SDK sends its version there).
	SDKName = "rostrum-rtclient/0.1"
	// Platform is sent as X-Stages-Platform (the Web SDK sends "web").
	Platform = "rtclient"
	// WHIPVersion is sent as X-Stages-WHIP-Version, as the Web SDK does.
	WHIPVersion = "draft-ietf-wish-whip-04"
)

// MaxRedirects is how many redirects a media POST follows, as the Web SDK's
// fetch does (IVS-BEHAVIOUR.md §2.2).
const MaxRedirects = 5

// maxBody bounds what is read of any answer of a media endpoint.
const maxBody = 1 << 20

var (
	// ErrTooManyRedirects is returned when a POST is redirected more than
	// MaxRedirects times.
	ErrTooManyRedirects = errors.New("rtclient: too many redirects")
	// ErrNoLink is returned when the server did not give the Link a call
	// needs (for example Layers without a layer link).
	ErrNoLink = errors.New("rtclient: the server gave no link for this")
)

// HTTPError is a non-2xx answer of a media endpoint.
type HTTPError struct {
	Status int    // HTTP status code
	Code   int    // IVS's error code from a JSON body {"code":N} (2001..2014); 0 when absent
	Body   string // the body as received (at most 1 MiB)
}

// ivsErrorCodes names IVS's media error codes (IVS-BEHAVIOUR.md §2.2).
var ivsErrorCodes = map[int]string{
	2001: "Unspecified",
	2002: "TokenExpired",
	2003: "NoPermissions",
	2004: "RemoteStreamNotFound",
	2005: "StageAtCapacity",
	2006: "InternalMHCPError",
	2007: "UncategorizedMHCPError",
	2008: "UnreachableMHCP",
	2010: "InvalidSessionStatus",
	2011: "PostWithoutOptions",
	2012: "AbortedMHCPError",
	2013: "StageAuthThrottled",
	2014: "NoMatchingCodec",
}

// CodeName is IVS's name of e.Code ("NoPermissions" for 2003), or "" when the
// code is absent or unknown.
func (e *HTTPError) CodeName() string { return ivsErrorCodes[e.Code] }

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rtclient: HTTP %d", e.Status)
	if e.Code != 0 {
		fmt.Fprintf(&b, " code %d", e.Code)
		if n := e.CodeName(); n != "" {
			fmt.Fprintf(&b, " (%s)", n)
		}
	}
	if body := strings.TrimSpace(e.Body); body != "" {
		if len(body) > 200 {
			body = body[:200] + "…"
		}
		fmt.Fprintf(&b, ": %s", body)
	}
	return b.String()
}

// newHTTPError builds the error of a non-2xx answer, reading IVS's code from
// a JSON body when there is one.
func newHTTPError(status int, body []byte) *HTTPError {
	e := &HTTPError{Status: status, Body: string(body)}
	var coded struct {
		Code json.Number `json:"code"`
	}
	if json.Unmarshal(body, &coded) == nil {
		if n, err := coded.Code.Int64(); err == nil {
			e.Code = int(n)
		}
	}
	return e
}

// signaller makes the HTTP requests of one Publisher or Subscriber: the
// offer, the DELETE and the link calls, all with the same headers.
type signaller struct {
	client    *http.Client // redirects are not followed by it: post follows them itself
	token     string
	sessionID string
	traceID   string
	extra     http.Header // caller's headers, added to every request

	location string            // the resource, absolute
	links    map[string]string // rel → absolute URL
}

func newSignaller(client *http.Client, token string, extra http.Header) *signaller {
	if client == nil {
		client = http.DefaultClient
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &signaller{
		client:    &c,
		token:     token,
		sessionID: randomID(),
		traceID:   randomID(),
		extra:     extra,
	}
}

// randomID is a 32-hex-digit identifier for the X-Stages-*-ID headers.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *signaller) newRequest(ctx context.Context, method, target, contentType string, body []byte, hdr http.Header) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, err
	}
	h := req.Header
	h.Set("Authorization", "Bearer "+s.token)
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	h.Set("X-Stages-Platform", Platform)
	h.Set("X-Stages-SDK", SDKName)
	h.Set("X-Stages-Request-ID", randomID())
	h.Set("X-Stages-Session-ID", s.sessionID)
	h.Set("X-Stages-Trace-ID", s.traceID)
	h.Set("X-Stages-WHIP-Version", WHIPVersion)
	for _, add := range []http.Header{hdr, s.extra} {
		for k, vs := range add {
			h.Del(k)
			for _, v := range vs {
				h.Add(k, v)
			}
		}
	}
	return req, nil
}

// do sends one request and reads the whole answer. Redirects are followed
// (up to MaxRedirects, keeping the method, body and every header, Authorization
// included, as IVS's global endpoint requires: IVS-BEHAVIOUR.md §2.1) when
// follow is set. It returns the final URL the answer came from.
func (s *signaller) do(ctx context.Context, method, target, contentType string, body []byte, hdr http.Header, follow bool) (*http.Response, []byte, *url.URL, error) {
	for hop := 0; ; hop++ {
		req, err := s.newRequest(ctx, method, target, contentType, body, hdr)
		if err != nil {
			return nil, nil, nil, err
		}
		resp, err := s.client.Do(req)
		if err != nil {
			return nil, nil, nil, err
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("rtclient: reading answer of %s %s: %w", method, target, err)
		}
		if follow && isRedirect(resp.StatusCode) && resp.Header.Get("Location") != "" {
			if hop >= MaxRedirects {
				return nil, nil, nil, fmt.Errorf("%w: more than %d from %s", ErrTooManyRedirects, MaxRedirects, target)
			}
			next, err := req.URL.Parse(resp.Header.Get("Location"))
			if err != nil {
				return nil, nil, nil, fmt.Errorf("rtclient: bad redirect Location: %w", err)
			}
			target = next.String()
			continue
		}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return resp, data, req.URL, newHTTPError(resp.StatusCode, data)
		}
		return resp, data, req.URL, nil
	}
}

func isRedirect(status int) bool {
	switch status {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// offer POSTs an SDP offer and returns the SDP answer. On success it records
// the resource (Location, resolved against the URL that answered) and the
// links.
// hdr holds headers of this request only (X-Stages-Initial-Layer-Pref).
func (s *signaller) offer(ctx context.Context, target, sdp string, hdr http.Header) (string, error) {
	resp, body, final, err := s.do(ctx, http.MethodPost, target, "application/sdp", []byte(sdp), hdr, true)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("rtclient: POST %s answered %d, want 201", target, resp.StatusCode)
	}
	if loc := resp.Header.Get("Location"); loc != "" {
		u, err := final.Parse(loc)
		if err != nil {
			return "", fmt.Errorf("rtclient: bad Location %q: %w", loc, err)
		}
		s.location = u.String()
	}
	s.links = parseLinks(final, resp.Header.Values("Link"))
	if len(body) == 0 {
		return "", fmt.Errorf("rtclient: POST %s answered %d without an SDP answer", target, resp.StatusCode)
	}
	return string(body), nil
}

// remove DELETEs the resource; a 404 (already gone) is not an error.
func (s *signaller) remove(ctx context.Context) error {
	if s.location == "" {
		return nil
	}
	_, _, _, err := s.do(ctx, http.MethodDelete, s.location, "", nil, nil, false)
	var he *HTTPError
	if errors.As(err, &he) && he.Status == http.StatusNotFound {
		return nil
	}
	return err
}

// linkJSON calls the link with the given rel: a GET when in is nil, else a
// POST of in as JSON. The answer's JSON body, if any, goes to out.
func (s *signaller) linkJSON(ctx context.Context, rel string, in, out any) error {
	target, ok := s.links[rel]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNoLink, rel)
	}
	method, ctype := http.MethodGet, ""
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
		method, ctype = http.MethodPost, "application/json"
	}
	_, data, _, err := s.do(ctx, method, target, ctype, body, nil, false)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("rtclient: %s %s: bad JSON answer: %w", method, target, err)
		}
	}
	return nil
}

// copyLinks returns a copy of the links, so callers cannot change ours.
func (s *signaller) copyLinks() map[string]string {
	out := make(map[string]string, len(s.links))
	for k, v := range s.links {
		out[k] = v
	}
	return out
}

// parseLinks reads RFC 8288 Link header values: `<uri>; rel="a b"; …`, several
// per header separated by commas. URIs are resolved against base. For a rel
// given more than once the first wins.
func parseLinks(base *url.URL, values []string) map[string]string {
	links := map[string]string{}
	for _, v := range values {
		for _, link := range splitLinks(v) {
			link = strings.TrimSpace(link)
			if !strings.HasPrefix(link, "<") {
				continue
			}
			end := strings.IndexByte(link, '>')
			if end < 0 {
				continue
			}
			target := link[1:end]
			if u, err := base.Parse(target); err == nil {
				target = u.String()
			}
			for _, param := range strings.Split(link[end+1:], ";") {
				name, value, ok := strings.Cut(strings.TrimSpace(param), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(name), "rel") {
					continue
				}
				value = strings.Trim(strings.TrimSpace(value), `"`)
				for _, rel := range strings.Fields(value) {
					if _, dup := links[rel]; !dup {
						links[rel] = target
					}
				}
			}
		}
	}
	return links
}

// splitLinks splits a Link header value at the commas that separate links,
// not at those inside <…> or quotes.
func splitLinks(v string) []string {
	var out []string
	inURI, inQuote, start := false, false, 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '<' && !inQuote:
			inURI = true
		case c == '>' && !inQuote:
			inURI = false
		case c == '"' && !inURI:
			inQuote = !inQuote
		case c == ',' && !inURI && !inQuote:
			out = append(out, v[start:i])
			start = i + 1
		}
	}
	return append(out, v[start:])
}
