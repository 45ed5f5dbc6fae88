package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	_ "crypto/sha512" // SHA-384 for golang-jwt's ES384 (crypto.SHA384.Available)
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// The JWS algorithms this package signs and accepts (RFC 7518 §3.4).
// AlgES384, ECDSA on P-384 with SHA-384, is the algorithm IVS documents for
// self-signed tokens, and the only one a token signed with an imported
// public key may use. AlgES256, ECDSA on P-256 with SHA-256, is what the
// server signs its own tokens with since issue 13: IVS's clients read a
// token's claims and never check its signature, so the algorithm of the
// server's tokens is the server's business, and signing ES256 costs about
// a tenth of ES384 (docs/performance.md). Tokens of a server whose stored
// key is still P-384 stay ES384 and keep verifying.
const (
	AlgES384 = "ES384"
	AlgES256 = "ES256"
)

// MaxTokenSize bounds the length of a token Parse will look at. IVS caps
// attributes at 1 KB and user_id at 128 characters, so real tokens stay well
// under 2 KiB; 16 KiB leaves room while keeping a hostile input cheap.
const MaxTokenSize = 16 << 10

// es384SigSize and es256SigSize are the lengths of ES384 and ES256 JWS
// signatures: r and s, each 48 (or 32) bytes big-endian, concatenated (RFC
// 7518 §3.4). Not the DER encoding that crypto/ecdsa's *ASN1 functions and
// AWS KMS use.
const (
	es384SigSize = 96
	es256SigSize = 64
)

// esMethod is what one of the two algorithms needs: its golang-jwt
// method, its curve and its signature length.
type esMethod struct {
	alg     string
	method  *jwt.SigningMethodECDSA
	curve   elliptic.Curve
	sigSize int
}

var (
	es384 = esMethod{AlgES384, jwt.SigningMethodES384, elliptic.P384(), es384SigSize}
	es256 = esMethod{AlgES256, jwt.SigningMethodES256, elliptic.P256(), es256SigSize}
)

func methodForAlg(alg string) (esMethod, bool) {
	switch alg {
	case AlgES384:
		return es384, true
	case AlgES256:
		return es256, true
	}
	return esMethod{}, false
}

// methodForCurve is the algorithm a key of curve c signs and verifies.
func methodForCurve(c elliptic.Curve) (esMethod, bool) {
	switch c {
	case elliptic.P384():
		return es384, true
	case elliptic.P256():
		return es256, true
	}
	return esMethod{}, false
}

// Header is the JOSE header of a token.
type Header struct {
	Alg string // "ES384" or "ES256" after a successful Parse
	Typ string // "JWT", or empty when the signer left it out
	Kid string // key id: a Rostrum signing key id, or a public-key ARN for self-signed tokens; may be empty
}

// Parsed is a token split and decoded by Parse. Its Claims are untrusted until
// Verify succeeds.
type Parsed struct {
	Header Header
	Claims Claims

	signingInput string // "header.payload" as received: the bytes that were signed
	signature    []byte // raw r||s
}

// parser is golang-jwt's, set to decode base64url strictly (one spelling per
// token, no padding) and, should its verifying Parse ever be used, to accept
// ES384 and ES256 alone. Here it only parses (ParseUnverified): the
// signature is checked by Verify, against a key the caller looked up by kid.
var parser = jwt.NewParser(jwt.WithValidMethods([]string{AlgES384, AlgES256}), jwt.WithStrictDecoding())

// Parse splits and decodes a compact JWS without checking its signature, so
// the caller can read Header.Kid to find the key for Verify.
//
// golang-jwt does the JWS decoding (segments, base64url, header, the claims
// through Claims.UnmarshalJSON, the signature). Parse adds Rostrum's rules on
// top, because tokens come from anyone: at most MaxTokenSize bytes; exactly
// three dot-separated parts of unpadded base64url, with no whitespace; a
// header and payload that are each one UTF-8 JSON object without duplicate
// members (the library decodes the header into a map, where
// {"alg":"none","alg":"ES384"} would silently become ES384); alg exactly
// "ES384" or "ES256" (anything else, including "none", "HS256" and IVS's own
// "KMS", is ErrUnsupportedAlg; which of the two a token may use is decided
// by its key, in Verify); typ absent or "JWT"; no "crit" header, since this
// package implements no extensions (RFC 7515 §4.1.11); and a signature of
// the algorithm's length (96 or 64 bytes). Header members that point at keys (jwk, jku, x5u, x5c) are
// ignored: the verification key always comes from Rostrum's own store.
// Parse never panics.
func Parse(raw string) (*Parsed, error) {
	if raw == "" {
		return nil, fmt.Errorf("%w: empty token", ErrMalformed)
	}
	if len(raw) > MaxTokenSize {
		return nil, fmt.Errorf("%w: token is %d bytes, more than %d", ErrMalformed, len(raw), MaxTokenSize)
	}
	// The base64 decoder skips '\r' and '\n', so the alphabet is checked here
	// first; this also rejects padding, whitespace and the '+' '/' of the
	// standard alphabet.
	for i := 0; i < len(raw); i++ {
		if c := raw[i]; !isB64URL(c) && c != '.' {
			return nil, fmt.Errorf("%w: byte %#02x at offset %d is not base64url", ErrMalformed, c, i)
		}
	}
	h, rest, ok1 := strings.Cut(raw, ".")
	pl, _, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Count(raw, ".") != 2 {
		return nil, fmt.Errorf("%w: a token has 3 parts separated by '.', got %d", ErrMalformed, strings.Count(raw, ".")+1)
	}
	// The header is checked first, so that a token of another algorithm is
	// reported as such whatever its payload holds.
	hb, err := parser.DecodeSegment(h)
	if err != nil {
		return nil, fmt.Errorf("%w: header is not base64url: %v", ErrMalformed, err)
	}
	if !utf8.Valid(hb) {
		return nil, fmt.Errorf("%w: header is not UTF-8", ErrMalformed)
	}
	header, err := parseHeader(hb)
	if err != nil {
		return nil, err
	}
	var claims jwtClaims
	t, _, err := parser.ParseUnverified(raw, &claims)
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			return nil, fmt.Errorf("payload: %w", err)
		}
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	m, _ := methodForAlg(header.Alg)
	if t.Method != m.method { // parseHeader saw to it; kept as a guard
		return nil, fmt.Errorf("%w: only %s and %s are accepted", ErrUnsupportedAlg, AlgES384, AlgES256)
	}
	if len(t.Signature) != m.sigSize {
		return nil, fmt.Errorf("%w: %s signature is %d bytes, got %d", ErrBadSignature, m.alg, m.sigSize, len(t.Signature))
	}
	return &Parsed{
		Header:       header,
		Claims:       claims.Claims,
		signingInput: raw[:len(h)+1+len(pl)],
		signature:    t.Signature,
	}, nil
}

// jwtClaims lets golang-jwt decode a payload into Claims. The library asks
// for the registered claims through jwt.Claims; Rostrum checks them itself
// (Claims.Validate), so only the decoding is delegated.
type jwtClaims struct{ Claims }

func (c *jwtClaims) UnmarshalJSON(b []byte) error {
	if !utf8.Valid(b) {
		return fmt.Errorf("%w: payload is not UTF-8", ErrMalformed)
	}
	return c.Claims.UnmarshalJSON(b)
}

func (c *jwtClaims) GetExpirationTime() (*jwt.NumericDate, error) { return numeric(c.ExpiresAt), nil }
func (c *jwtClaims) GetIssuedAt() (*jwt.NumericDate, error)       { return numeric(c.IssuedAt), nil }
func (c *jwtClaims) GetNotBefore() (*jwt.NumericDate, error)      { return numeric(c.NotBefore), nil }
func (c *jwtClaims) GetIssuer() (string, error)                   { return "", nil }
func (c *jwtClaims) GetSubject() (string, error)                  { return "", nil }
func (c *jwtClaims) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

func numeric(unix int64) *jwt.NumericDate {
	if unix == 0 {
		return nil
	}
	return jwt.NewNumericDate(time.Unix(unix, 0))
}

func isB64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

func parseHeader(b []byte) (Header, error) {
	var h Header
	var hasAlg bool
	err := walkObject(b, func(key string, raw json.RawMessage) error {
		switch key {
		case "alg":
			hasAlg = true
			return decodeString("header "+key, raw, &h.Alg)
		case "typ":
			return decodeString("header "+key, raw, &h.Typ)
		case "kid":
			return decodeString("header "+key, raw, &h.Kid)
		case "crit":
			return fmt.Errorf("%w: header has crit, and no extension is supported", ErrMalformed)
		}
		return nil
	})
	if err != nil {
		return Header{}, fmt.Errorf("header: %w", err)
	}
	if !hasAlg {
		return Header{}, fmt.Errorf("%w: header has no alg", ErrMalformed)
	}
	if _, ok := methodForAlg(h.Alg); !ok {
		return Header{}, fmt.Errorf("%w: %q, only %s and %s are accepted", ErrUnsupportedAlg, clip(h.Alg), AlgES384, AlgES256)
	}
	// RFC 7519 §5.1 recommends "JWT" and compares it case-insensitively.
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		return Header{}, fmt.Errorf("%w: typ %q is not JWT", ErrMalformed, clip(h.Typ))
	}
	return h, nil
}

// Verify checks the signature of p under pub: ES384 under a P-384 key, ES256
// under a P-256 key. A token whose alg is not its key's (an ES256 token
// under an imported P-384 public key: self-signed tokens are ES384, as IVS
// requires) is ErrUnsupportedAlg. It returns ErrBadSignature when the
// signature does not match, and ErrInvalidPublicKey when pub cannot check
// either algorithm (nil, another curve, no point).
//
// Timing: ECDSA verification involves only public values (the key, the signed
// bytes and the signature), so unlike an HMAC comparison it leaks nothing an
// attacker does not already have; crypto/ecdsa's P-384 code is constant-time
// (and P-256) code is constant-time regardless. There is no early
// byte-by-byte comparison here.
//
// Verify is called once per join, so its cost (see BenchmarkVerify) bounds how
// fast a server can admit participants.
func (p *Parsed) Verify(pub *ecdsa.PublicKey) (err error) {
	if p == nil {
		return fmt.Errorf("%w: nil token", ErrMalformed)
	}
	m, err := checkVerifyKey(pub)
	if err != nil {
		return err
	}
	if p.Header.Alg != "" && p.Header.Alg != m.alg {
		return fmt.Errorf("%w: token is %s, its key verifies %s", ErrUnsupportedAlg, clip(p.Header.Alg), m.alg)
	}
	if len(p.signature) != m.sigSize {
		return fmt.Errorf("%w: %s signature is %d bytes, got %d", ErrBadSignature, m.alg, m.sigSize, len(p.signature))
	}
	// crypto/ecdsa dereferences the coordinates of pub without checking them,
	// and reading them here would mean using the deprecated X and Y fields; a
	// hand-built PublicKey without a point is turned into an error instead.
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: key cannot be used: %v", ErrInvalidPublicKey, r)
		}
	}()
	if err := m.method.Verify(p.signingInput, p.signature, pub); err != nil {
		return ErrBadSignature
	}
	return nil
}

func checkVerifyKey(pub *ecdsa.PublicKey) (esMethod, error) {
	if pub == nil {
		return esMethod{}, fmt.Errorf("%w: nil key", ErrInvalidPublicKey)
	}
	m, ok := methodForCurve(pub.Curve)
	if !ok {
		return esMethod{}, fmt.Errorf("%w: ES384 needs a P-384 key and ES256 a P-256 key, got %s", ErrInvalidPublicKey, curveName(pub.Curve))
	}
	return m, nil
}

// Sign mints a token: a compact JWS with header
// {"alg":"ES256","typ":"JWT","kid":<k.ID>} (ES384 for a P-384 key) and c as
// payload, shaped as IVS shapes its tokens (see Claims.MarshalJSON).
//
// Sign refuses claims that Validate would reject for their shape (bad jti,
// resource, topic or URLs, exp not after iat), so Rostrum never hands out a
// token it would itself turn away. It does not look at the clock.
func (k *SigningKey) Sign(c Claims) (string, error) {
	m, err := k.checkMethod()
	if err != nil {
		return "", err
	}
	if err := c.checkShape(); err != nil {
		return "", err
	}
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		Kid string `json:"kid"`
	}{m.alg, "JWT", k.ID})
	if err != nil {
		return "", err
	}
	payload, err := c.MarshalJSON()
	if err != nil {
		return "", err
	}

	var enc jwt.Token // EncodeSegment is base64url without padding, RFC 7515's
	signingInput := enc.EncodeSegment(header) + "." + enc.EncodeSegment(payload)
	sig, err := m.method.Sign(signingInput, k.Private)
	if err != nil {
		return "", fmt.Errorf("token: signing: %w", err)
	}
	return signingInput + "." + enc.EncodeSegment(sig), nil
}
