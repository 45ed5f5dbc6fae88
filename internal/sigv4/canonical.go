package sigv4

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

const upperhex = "0123456789ABCDEF"

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// uriEncode percent-encodes every byte of s outside the RFC 3986 unreserved
// set with upper-case hex, as SigV4 requires. '/' is left alone when
// keepSlash is set (paths) and encoded otherwise (query components).
func uriEncode(s string, keepSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; !unreserved(c) && !(keepSlash && c == '/') {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (keepSlash && c == '/') {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(upperhex[c>>4])
			b.WriteByte(upperhex[c&15])
		}
	}
	return b.String()
}

// wireTarget returns the escaped path and raw query exactly as the client
// sent them. For a request received by net/http that is RequestURI (so a
// router that rewrote r.URL afterwards cannot change what is verified);
// otherwise r.URL's escaped form, which is what net/http's client writes on
// the wire.
func wireTarget(r *http.Request) (path, rawQuery string) {
	if u := r.RequestURI; len(u) > 0 && u[0] == '/' {
		path, rawQuery, _ = strings.Cut(u, "?")
		return path, rawQuery
	}
	if r.URL == nil {
		return "/", ""
	}
	if r.URL.Opaque != "" {
		// "//host/path" or "/path" carried in Opaque.
		p := r.URL.Opaque
		if strings.HasPrefix(p, "//") {
			p = p[2:]
			if i := strings.IndexByte(p, '/'); i >= 0 {
				p = p[i:]
			} else {
				p = ""
			}
		}
		return p, r.URL.RawQuery
	}
	return r.URL.EscapedPath(), r.URL.RawQuery
}

// canonicalURIs returns the canonical URI candidates for an escaped wire
// path. Every AWS SDK signs non-S3 requests with the already-escaped path
// escaped a second time ('%' becomes '%25', so "%3A" is signed as "%253A").
// The Go SDK signs the path as is; botocore (AWS CLI) and the JavaScript v3
// SDK first remove "." / ".." segments and duplicate slashes. The first
// candidate is the unnormalised form; a second is returned only when
// normalisation changes the path.
func canonicalURIs(path string) []string {
	if path == "" {
		path = "/"
	}
	raw := uriEncode(path, true)
	norm := removeDotSegments(path)
	if norm == path {
		return []string{raw}
	}
	return []string{raw, uriEncode(norm, true)}
}

// removeDotSegments applies RFC 3986 dot-segment removal and also collapses
// empty segments, which is the normalisation AWS SDKs apply before signing
// non-S3 requests.
func removeDotSegments(p string) string {
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for _, s := range segs {
		switch s {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, s)
		}
	}
	var b strings.Builder
	if p[0] == '/' {
		b.WriteByte('/')
	}
	b.WriteString(strings.Join(out, "/"))
	if len(out) > 0 && p[len(p)-1] == '/' {
		b.WriteByte('/')
	}
	return b.String()
}

type queryPair struct{ k, v string }

// decodeQueryComponent decodes one query name or value. With plusIsSpace a
// '+' means a space (HTML form encoding, which is how Go's url.Values and
// the Go SDK read a query); otherwise it is a literal '+'. An invalid escape
// leaves the component as sent, so it is re-encoded byte for byte.
func decodeQueryComponent(s string, plusIsSpace bool) string {
	var d string
	var err error
	if plusIsSpace {
		d, err = url.QueryUnescape(s)
	} else {
		d, err = url.PathUnescape(s)
	}
	if err != nil {
		return s
	}
	return d
}

// splitQuery splits a raw query into decoded pairs, dropping empty pieces.
func splitQuery(raw string, plusIsSpace bool) []queryPair {
	if raw == "" {
		return nil
	}
	pairs := make([]queryPair, 0, strings.Count(raw, "&")+1)
	for raw != "" {
		var piece string
		piece, raw, _ = strings.Cut(raw, "&")
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		pairs = append(pairs, queryPair{decodeQueryComponent(k, plusIsSpace), decodeQueryComponent(v, plusIsSpace)})
	}
	return pairs
}

// queryValue returns the first decoded value of key in raw.
func queryValue(pairs []queryPair, key string) (string, bool) {
	for _, p := range pairs {
		if p.k == key {
			return p.v, true
		}
	}
	return "", false
}

// canonicalQuery builds the SigV4 canonical query string: every name and
// value decoded then re-encoded with RFC 3986 rules ("%20" for space), pairs
// sorted by encoded name then encoded value (the spec sorts after encoding),
// a name without a value written as "name=". X-Amz-Signature is left out
// when skipSignature is set (query-string auth).
func canonicalQuery(pairs []queryPair, skipSignature bool) string {
	if len(pairs) == 0 {
		return ""
	}
	enc := make([]queryPair, 0, len(pairs))
	for _, p := range pairs {
		if skipSignature && p.k == "X-Amz-Signature" {
			continue
		}
		enc = append(enc, queryPair{uriEncode(p.k, false), uriEncode(p.v, false)})
	}
	sort.Slice(enc, func(i, j int) bool {
		if enc[i].k != enc[j].k {
			return enc[i].k < enc[j].k
		}
		return enc[i].v < enc[j].v
	})
	var b strings.Builder
	for i, p := range enc {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
	return b.String()
}

// headerValues returns the values of the header name (any case) as the
// client sent them. net/http keeps some request headers out of r.Header
// (Host always, Transfer-Encoding after parsing it); those are recovered from
// the request's own fields.
func headerValues(r *http.Request, name string) []string {
	lname := strings.ToLower(name)
	if lname == "host" {
		if r.Host != "" {
			return []string{r.Host}
		}
		if r.URL != nil {
			return []string{r.URL.Host}
		}
		return nil
	}
	if vs, ok := r.Header[http.CanonicalHeaderKey(name)]; ok {
		return vs
	}
	// Header names that are not valid tokens are stored uncanonicalised.
	var vs []string
	for k, v := range r.Header {
		if strings.EqualFold(k, name) {
			vs = append(vs, v...)
		}
	}
	if vs != nil {
		return vs
	}
	switch lname {
	case "content-length":
		if r.ContentLength > 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
	}
	return nil
}

// canonicalHeaderValue trims a header value and collapses runs of spaces,
// joining repeated headers with ','.
func canonicalHeaderValue(vs []string) string {
	var b strings.Builder
	for i, v := range vs {
		if i > 0 {
			b.WriteByte(',')
		}
		v = strings.TrimSpace(v)
		prevSpace := false
		for j := 0; j < len(v); j++ {
			c := v[j]
			if c == ' ' {
				if prevSpace {
					continue
				}
				prevSpace = true
			} else {
				prevSpace = false
			}
			b.WriteByte(c)
		}
	}
	return b.String()
}

// canonicalHeaders renders the signed headers, in the order the client
// listed them, as "name:value\n" lines.
func canonicalHeaders(r *http.Request, signed []string) string {
	var b strings.Builder
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeaderValue(headerValues(r, name)))
		b.WriteByte('\n')
	}
	return b.String()
}

// canonicalRequest joins the parts of the SigV4 canonical request.
func canonicalRequest(method, uri, query, headers, signedHeaders, payloadHash string) string {
	return method + "\n" + uri + "\n" + query + "\n" + headers + "\n" + signedHeaders + "\n" + payloadHash
}
