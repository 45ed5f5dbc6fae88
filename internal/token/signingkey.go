package token

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
)

// SigningKey is the key Rostrum signs its own participant tokens with: a
// private P-256 key (ES256) plus the key id that goes in each token's "kid"
// header, so that a token can be matched to its key after the key is
// rotated. A P-384 key (ES384), what servers made before issue 13 stored,
// is still read and used as it is, so that the tokens it issued keep
// verifying.
type SigningKey struct {
	// ID is the "kid" of tokens signed with this key: 1–128 visible ASCII
	// characters, not beginning with "arn:", so it can never be mistaken for
	// the public-key ARN that self-signed tokens carry as their kid.
	ID      string
	Private *ecdsa.PrivateKey
}

// keyIDPreamble starts the line MarshalPEM writes above the PEM block.
const keyIDPreamble = "Key-Id:"

// maxKeyPEMSize bounds what ParseSigningKeyPEM and ParsePublicKeyPEM read. A
// P-384 or P-256 key in PEM is a few hundred bytes.
const maxKeyPEMSize = 16 << 10

// GenerateSigningKey makes a new P-256 key with a random 16-character
// base64url key id (96 random bits, so ids of independently made keys do not
// collide).
func GenerateSigningKey() (*SigningKey, error) {
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("token: key id: %w", err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("token: generating P-256 key: %w", err)
	}
	return &SigningKey{ID: base64.RawURLEncoding.EncodeToString(id[:]), Private: priv}, nil
}

// Public returns the public half of k, the key Verify needs for tokens k
// signed. It returns nil if k has no private key.
func (k *SigningKey) Public() *ecdsa.PublicKey {
	if k == nil || k.Private == nil {
		return nil
	}
	return &k.Private.PublicKey
}

// MarshalPEM encodes k for storage: the key id on a "Key-Id:" line, then the
// private key as a PKCS#8 "PRIVATE KEY" PEM block.
//
//	Key-Id: 3q2-7wEjRWeJq83v
//	-----BEGIN PRIVATE KEY-----
//	MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDD…
//	-----END PRIVATE KEY-----
//
// The id sits in front of the block, as explanatory text (RFC 7468 §2), rather
// than in a PEM header inside it: OpenSSL refuses headers in a PRIVATE KEY
// block, but skips text before it, so `openssl pkey -in key.pem` still reads
// the file an operator backs up or inspects.
func (k *SigningKey) MarshalPEM() ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSigningKey, err)
	}
	var b bytes.Buffer
	b.WriteString(keyIDPreamble + " " + k.ID + "\n")
	if err := pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSigningKey, err)
	}
	return b.Bytes(), nil
}

// ParseSigningKeyPEM reads what MarshalPEM wrote: one "Key-Id:" line, then
// exactly one unencrypted PEM block holding a P-256 or P-384 private key. The
// block may be PKCS#8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY", what
// `openssl ecparam -name prime256v1 -genkey -noout` prints), so an operator
// can bring a key made with OpenSSL by adding a Key-Id line above it.
func ParseSigningKeyPEM(b []byte) (*SigningKey, error) {
	bad := func(format string, args ...any) (*SigningKey, error) {
		return nil, fmt.Errorf("%w: "+format, append([]any{ErrInvalidSigningKey}, args...)...)
	}
	if len(b) > maxKeyPEMSize {
		return bad("PEM is %d bytes, more than %d", len(b), maxKeyPEMSize)
	}
	begin := []byte("-----BEGIN ")
	if n := bytes.Count(b, begin); n != 1 {
		return bad("want exactly one PEM block, found %d", n)
	}
	at := bytes.Index(b, begin)
	block, rest := pem.Decode(b[at:])
	if block == nil {
		return bad("PEM block cannot be decoded")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return bad("data after the PEM block")
	}
	if len(block.Headers) != 0 {
		return bad("PEM block has headers (encrypted keys are not supported)")
	}

	var id string
	for _, line := range strings.Split(string(b[:at]), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		v, ok := strings.CutPrefix(line, keyIDPreamble)
		if !ok || id != "" {
			return bad("unexpected text before the PEM block: %q", clip(line))
		}
		id = strings.TrimSpace(v)
		if id == "" {
			return bad("empty Key-Id")
		}
	}
	if id == "" {
		return bad("no %q line before the PEM block", keyIDPreamble)
	}

	var parsed any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		parsed, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		parsed, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return bad("PEM block is %q, want PRIVATE KEY or EC PRIVATE KEY", clip(block.Type))
	}
	if err != nil {
		return bad("%v", err)
	}
	priv, ok := parsed.(*ecdsa.PrivateKey)
	if !ok {
		return bad("want an ECDSA P-256 or P-384 key, got %s", keyKind(parsed))
	}
	k := &SigningKey{ID: id, Private: priv}
	if err := k.check(); err != nil {
		return nil, err
	}
	return k, nil
}

// Alg is the JWS algorithm k signs with: ES256 for a P-256 key, ES384 for
// a P-384 one, "" for a key that cannot sign.
func (k *SigningKey) Alg() string {
	m, err := k.checkMethod()
	if err != nil {
		return ""
	}
	return m.alg
}

// check reports whether k can sign tokens with a usable kid.
func (k *SigningKey) check() error {
	_, err := k.checkMethod()
	return err
}

// checkMethod is check, returning the algorithm k signs with.
func (k *SigningKey) checkMethod() (esMethod, error) {
	if k == nil || k.Private == nil {
		return esMethod{}, fmt.Errorf("%w: no private key", ErrInvalidSigningKey)
	}
	m, ok := methodForCurve(k.Private.Curve)
	if !ok {
		return esMethod{}, fmt.Errorf("%w: want a P-256 or P-384 key, got %s", ErrInvalidSigningKey, curveName(k.Private.Curve))
	}
	if err := k.checkID(); err != nil {
		return esMethod{}, err
	}
	return m, nil
}

func (k *SigningKey) checkID() error {
	if len(k.ID) == 0 || len(k.ID) > 128 {
		return fmt.Errorf("%w: key id must be 1-128 characters, got %d", ErrInvalidSigningKey, len(k.ID))
	}
	for i := 0; i < len(k.ID); i++ {
		if c := k.ID[i]; c <= ' ' || c > '~' {
			return fmt.Errorf("%w: key id %q must be visible ASCII", ErrInvalidSigningKey, clip(k.ID))
		}
	}
	if strings.HasPrefix(k.ID, "arn:") {
		return fmt.Errorf("%w: key id %q looks like an ARN, which is the kid of self-signed tokens", ErrInvalidSigningKey, clip(k.ID))
	}
	return nil
}

func curveName(c elliptic.Curve) string {
	if c == nil || c.Params() == nil {
		return "unknown curve"
	}
	return c.Params().Name
}
