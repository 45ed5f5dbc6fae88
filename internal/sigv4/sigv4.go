// Package sigv4 verifies AWS Signature Version 4 on incoming HTTP requests.
//
// Rostrum answers the Amazon IVS Real-Time API so that the official AWS SDKs
// and the AWS CLI can talk to it with nothing changed but the endpoint. Those
// clients always sign their requests with SigV4 and cannot be told not to, so
// the server has to do what AWS does on its side: rebuild the canonical
// request from what arrived on the wire, derive the signing key from the
// secret of the access key named in the credential scope, and compare
// signatures. Doing it properly (rather than ignoring the Authorization
// header) gives Rostrum real per-key authentication and makes a misconfigured
// client fail the way it would against AWS, with the same error codes and
// messages, which the SDKs surface as their usual typed exceptions.
//
// Both header auth (Authorization: AWS4-HMAC-SHA256 ...) and query-string
// ("presigned URL") auth are supported. Canonicalisation follows the SigV4
// specification as the AWS SDKs implement it for non-S3 services: the
// already-escaped request path is URI-encoded a second time, and a path that
// only matches after RFC 3986 dot-segment/duplicate-slash normalisation (as
// botocore and the JavaScript SDK sign it) is accepted too. The payload is
// always the SHA-256 of the body received: UNSIGNED-PAYLOAD is S3's alone
// (see payloadHash).
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Principal is who signed a verified request.
type Principal struct {
	AccessKeyID string
	AccountID   string
}

// Credential is one accepted access key.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
	// AccountID is reported in the Principal of requests signed with this key.
	AccountID string
	// SessionToken, when set, must be sent as X-Amz-Security-Token (header
	// or query) with every request signed by this key; when empty, any
	// token the client sends is covered by the signature and otherwise
	// ignored, so temporary credentials of any shape work.
	SessionToken string
}

// Verifier checks SigV4 signatures. Its fields must not change while Verify
// may be running; Verify itself is safe for concurrent use.
type Verifier struct {
	// Service is the signing name requests must be scoped to ("ivs" for
	// ivs-realtime). Empty accepts any service.
	Service string
	// Region requests must be scoped to, e.g. "us-east-1". Empty accepts
	// any region.
	Region string
	// Credentials are the accepted access keys.
	Credentials []Credential
	// Lookup, if set, is used instead of Credentials to find the key
	// named in a request.
	Lookup func(accessKeyID string) (Credential, bool)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MaxSkew is how far the signing time may be from Now, either way;
	// 0 means 15 minutes, as AWS allows.
	MaxSkew time.Duration
}

const (
	isoFormat   = "20060102T150405Z"
	dateFormat  = "20060102"
	maxPresign  = 7 * 24 * time.Hour
	defaultSkew = 15 * time.Minute

	unsignedPayload = "UNSIGNED-PAYLOAD"
	hdrContentSHA   = "X-Amz-Content-Sha256"
	hdrSecToken     = "X-Amz-Security-Token"
)

// request is what Verify extracted from either auth mechanism.
type request struct {
	presigned     bool
	scope         scope
	signedHeaders string
	signature     string
	amzDate       string // ISO-8601 basic, as used in the string to sign
	t             time.Time
	expires       time.Duration // query auth only: X-Amz-Expires
	hasExpires    bool
	token         string
}

// Verify checks the SigV4 signature of r, whose body has already been read
// into body (r.Body is not touched). It returns the principal that signed the
// request, or an *Error carrying the AWS error code, message and HTTP status
// to answer with.
func (v *Verifier) Verify(r *http.Request, body []byte) (Principal, error) {
	p, err := v.verify(r, body)
	if err != nil {
		return Principal{}, err
	}
	return p, nil
}

func (v *Verifier) verify(r *http.Request, body []byte) (Principal, *Error) {
	path, rawQuery := wireTarget(r)
	pairs := splitQuery(rawQuery, true)

	authz := r.Header.Get("Authorization")
	_, hasQueryAuth := queryValue(pairs, "X-Amz-Algorithm")
	var (
		req *request
		err *Error
	)
	switch {
	case authz == "" && !hasQueryAuth:
		return Principal{}, errMissing()
	case authz != "" && hasQueryAuth:
		return Principal{}, errIncomplete("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.")
	case authz != "":
		req, err = fromHeader(r, authz)
	default:
		req, err = fromQuery(pairs)
	}
	if err != nil {
		return Principal{}, err
	}

	if err := v.checkScope(req); err != nil {
		return Principal{}, err
	}
	if err := v.checkTime(req); err != nil {
		return Principal{}, err
	}

	cred, ok := v.lookup(req.scope.AccessKeyID)
	if !ok {
		return Principal{}, errUnrecognized()
	}
	if cred.SessionToken != "" && subtle.ConstantTimeCompare([]byte(cred.SessionToken), []byte(req.token)) != 1 {
		return Principal{}, errUnrecognized()
	}

	payload, err := payloadHash(r, body)
	if err != nil {
		return Principal{}, err
	}

	signed := strings.Split(req.signedHeaders, ";")
	headers := canonicalHeaders(r, signed)
	queries := []string{canonicalQuery(pairs, req.presigned)}
	if strings.Contains(rawQuery, "+") {
		// A literal '+' is ambiguous: it is a space to form decoders and a
		// plus to RFC 3986 ones. Accept a signature over either reading.
		queries = append(queries, canonicalQuery(splitQuery(rawQuery, false), req.presigned))
	}
	key := signingKey(cred.SecretAccessKey, req.scope)
	provided := []byte(strings.ToLower(req.signature))
	matches := func(payload string) bool {
		for _, uri := range canonicalURIs(path) {
			for _, q := range queries {
				creq := canonicalRequest(r.Method, uri, q, headers, req.signedHeaders, payload)
				sig := signature(key, stringToSign(req.amzDate, req.scope, creq))
				if subtle.ConstantTimeCompare(sig, provided) == 1 {
					return true
				}
			}
		}
		return false
	}
	if matches(payload) {
		return Principal{AccessKeyID: cred.AccessKeyID, AccountID: cred.AccountID}, nil
	}
	// A presigned URL made the S3 way signs UNSIGNED-PAYLOAD in place of the
	// body's hash. It is refused all the same; checking for it (only after
	// the real check failed) turns a puzzling mismatch into a message that
	// says what to change.
	if req.presigned && matches(unsignedPayload) {
		return Principal{}, errInvalid(msgUnsignedPayload)
	}
	return Principal{}, errInvalid(msgSignatureMismatch)
}

func fromHeader(r *http.Request, authz string) (*request, *Error) {
	a, err := parseAuthorization(authz)
	if err != nil {
		return nil, err
	}
	var missing []string
	if a.Credential == "" {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if a.Signature == "" {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if a.SignedHeaders == "" {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	httpDate := r.Header.Get("Date")
	if amzDate == "" && httpDate == "" {
		missing = append(missing, "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	if len(missing) > 0 {
		return nil, errIncomplete(strings.Join(missing, " ") + " Authorization=" + authz)
	}
	sc, err := parseCredential(a.Credential)
	if err != nil {
		return nil, err
	}
	req := &request{
		scope:         sc,
		signedHeaders: a.SignedHeaders,
		signature:     a.Signature,
		token:         r.Header.Get(hdrSecToken),
	}
	if amzDate != "" {
		t, err := parseAmzDate(amzDate)
		if err != nil {
			return nil, err
		}
		req.t, req.amzDate = t, amzDate
	} else {
		t, perr := http.ParseTime(httpDate)
		if perr != nil {
			return nil, errIncomplete(fmt.Sprintf("Date header must be an RFC 1123 date when X-Amz-Date is absent. Got '%s'.", httpDate))
		}
		req.t, req.amzDate = t.UTC(), t.UTC().Format(isoFormat)
	}
	if !signsHost(req.signedHeaders) {
		return nil, errIncomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return req, nil
}

func fromQuery(pairs []queryPair) (*request, *Error) {
	get := func(k string) string { v, _ := queryValue(pairs, k); return v }
	if alg := get("X-Amz-Algorithm"); alg != algorithm {
		return nil, errIncomplete(fmt.Sprintf("X-Amz-Algorithm only supports '%s', got '%s'.", algorithm, alg))
	}
	var missing []string
	for _, k := range []string{"X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"} {
		if get(k) == "" {
			missing = append(missing, fmt.Sprintf("AWS query-string parameters must include '%s'.", k))
		}
	}
	if len(missing) > 0 {
		return nil, errIncomplete(strings.Join(missing, " ") + " Re-examine the query-string parameters.")
	}
	sc, err := parseCredential(get("X-Amz-Credential"))
	if err != nil {
		return nil, err
	}
	req := &request{
		presigned:     true,
		scope:         sc,
		signedHeaders: get("X-Amz-SignedHeaders"),
		signature:     get("X-Amz-Signature"),
		amzDate:       get("X-Amz-Date"),
		token:         get(hdrSecToken),
	}
	if req.t, err = parseAmzDate(req.amzDate); err != nil {
		return nil, err
	}
	if e, ok := queryValue(pairs, "X-Amz-Expires"); ok {
		n, perr := strconv.ParseInt(e, 10, 64)
		switch {
		case perr != nil || n < 0:
			return nil, errIncomplete(fmt.Sprintf("X-Amz-Expires must be a non-negative integer number of seconds, got '%s'.", e))
		case n > int64(maxPresign/time.Second):
			return nil, errIncomplete("X-Amz-Expires must be less than a week (in seconds) that is 604800.")
		}
		req.expires, req.hasExpires = time.Duration(n)*time.Second, true
	}
	if !signsHost(req.signedHeaders) {
		return nil, errIncomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	return req, nil
}

func parseAmzDate(s string) (time.Time, *Error) {
	t, err := time.Parse(isoFormat, s)
	if err != nil || len(s) != len(isoFormat) {
		return time.Time{}, errIncomplete(fmt.Sprintf("Date must be in ISO-8601 'basic format'. Got '%s'. See http://en.wikipedia.org/wiki/ISO_8601", s))
	}
	return t, nil
}

func signsHost(signedHeaders string) bool {
	for _, h := range strings.Split(signedHeaders, ";") {
		if strings.EqualFold(h, "host") || h == ":authority" {
			return true
		}
	}
	return false
}

func (v *Verifier) checkScope(req *request) *Error {
	sc := req.scope
	if d := req.t.Format(dateFormat); sc.Date != d {
		return errInvalid(fmt.Sprintf("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.", sc.Date, d, req.amzDate))
	}
	if v.Region != "" && sc.Region != v.Region {
		return errInvalid("Credential should be scoped to a valid region. ")
	}
	if v.Service != "" && sc.Service != v.Service {
		return errInvalid(fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", v.Service))
	}
	return nil
}

func (v *Verifier) checkTime(req *request) *Error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	n := now().UTC()
	skew := v.MaxSkew
	if skew <= 0 {
		skew = defaultSkew
	}
	// A presigned URL is valid for X-Amz-Expires after its signing time;
	// anything else for MaxSkew. Either may be signed up to MaxSkew ahead.
	window := skew
	if req.hasExpires {
		window = req.expires
	}
	if earliest := n.Add(-window); req.t.Before(earliest) {
		return errInvalid(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s.)",
			req.amzDate, earliest.Format(isoFormat), n.Format(isoFormat), fmtDuration(window)))
	}
	if latest := n.Add(skew); req.t.After(latest) {
		return errInvalid(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s.)",
			req.amzDate, latest.Format(isoFormat), n.Format(isoFormat), fmtDuration(skew)))
	}
	return nil
}

func fmtDuration(d time.Duration) string {
	switch {
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + " sec"
	}
	return d.String()
}

func (v *Verifier) lookup(id string) (Credential, bool) {
	if v.Lookup != nil {
		return v.Lookup(id)
	}
	for _, c := range v.Credentials {
		if c.AccessKeyID == id {
			return c, true
		}
	}
	return Credential{}, false
}

// payloadHash returns the payload hash of the canonical request: always the
// SHA-256 of the body that arrived. Only Amazon S3 lets a client leave the
// body out of the signature (UNSIGNED-PAYLOAD, STREAMING-*); restJson1
// services such as ivs-realtime hash the real body, so a signature, header
// or presigned, covers every byte of the request. Accepting UNSIGNED-PAYLOAD
// here would let anyone holding a presigned URL send it with another body
// (a token for another stage, other capabilities). No AWS SDK sends it for
// this API: aws-sdk-go-v2, the JS SDK v3 and botocore sign the body's hash,
// presigned or not, for every service but S3.
//
// A client-supplied X-Amz-Content-Sha256 must be that hash; anything else
// is refused before the signature is checked, with a message that says why.
func payloadHash(r *http.Request, body []byte) (string, *Error) {
	sum := sha256.Sum256(body)
	bodyHash := hex.EncodeToString(sum[:])
	if h := r.Header.Get(hdrContentSHA); h != "" && !strings.EqualFold(h, bodyHash) {
		if isUnsigned(h) {
			return "", errInvalid(msgUnsignedPayload)
		}
		return "", errInvalid(msgPayloadMismatch)
	}
	return bodyHash, nil
}

// isUnsigned reports whether h is one of S3's placeholders for a payload
// left out of the signature.
func isUnsigned(h string) bool {
	return h == unsignedPayload || strings.HasPrefix(h, "STREAMING-")
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// signingKey derives kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service), "aws4_request").
func signingKey(secret string, sc scope) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), sc.Date)
	k = hmacSHA256(k, sc.Region)
	k = hmacSHA256(k, sc.Service)
	return hmacSHA256(k, sc.Terminator)
}

func stringToSign(amzDate string, sc scope, creq string) string {
	h := sha256.Sum256([]byte(creq))
	return algorithm + "\n" + amzDate + "\n" + sc.String() + "\n" + hex.EncodeToString(h[:])
}

// signature returns the lower-case hex HMAC of sts under key.
func signature(key []byte, sts string) []byte {
	mac := hmacSHA256(key, sts)
	out := make([]byte, hex.EncodedLen(len(mac)))
	hex.Encode(out, mac)
	return out
}
