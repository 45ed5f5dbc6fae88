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
// private P-384 key plus the key id that goes in each token's "kid" header, so
// that a token can be matched to its key after the key is rotated.
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
// P-384 key in PEM is a few hundred bytes.
const maxKeyPEMSize = 16 << 10

// GenerateSigningKey makes a new P-384 key with a random 16-character
// base64url key id (96 random bits, so ids of independently made keys do not
// collide).
func GenerateSigningKey() (*SigningKey, error) {
	var id [12]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, fmt.Errorf("token: key id: %w", err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("token: generating P-384 key: %w", err)
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
// exactly one unencrypted PEM block holding a P-384 private key. The block may
// be PKCS#8 ("PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY", what
// `openssl ecparam -name secp384r1 -genkey -noout` prints), so an operator can
// bring a key made with OpenSSL by adding a Key-Id line above it.
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
		return bad("want an ECDSA P-384 key, got %s", keyKind(parsed))
	}
	k := &SigningKey{ID: id, Private: priv}
	if err := k.check(); err != nil {
		return nil, err
	}
	return k, nil
}

// check reports whether k can sign ES384 tokens with a usable kid.
func (k *SigningKey) check() error {
	if k == nil || k.Private == nil {
		return fmt.Errorf("%w: no private key", ErrInvalidSigningKey)
	}
	if k.Private.Curve != elliptic.P384() {
		return fmt.Errorf("%w: want a P-384 key, got %s", ErrInvalidSigningKey, curveName(k.Private.Curve))
	}
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
