package token

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
)

// publicKeyError is what ParsePublicKeyPEM returns. Its message is written for
// the ImportPublicKey caller and can go into a ValidationException unchanged
// ("publicKeyMaterial must be an ECDSA P-384 public key, got RSA"), while
// errors.Is(err, ErrInvalidPublicKey) still holds.
type publicKeyError struct {
	msg   string
	cause error
}

func (e *publicKeyError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *publicKeyError) Is(target error) bool { return target == ErrInvalidPublicKey }
func (e *publicKeyError) Unwrap() error        { return e.cause }

func badMaterial(cause error, format string, args ...any) error {
	return &publicKeyError{msg: "publicKeyMaterial " + fmt.Sprintf(format, args...), cause: cause}
}

// ParsePublicKeyPEM reads the publicKeyMaterial of ImportPublicKey: exactly one
// PEM block of type "PUBLIC KEY" holding a PKIX SubjectPublicKeyInfo for an
// ECDSA key on P-384, as `openssl ec -in priv.pem -pubout` prints it. Only
// whitespace may surround the block.
//
// IVS verifies self-signed tokens as ES384, so any other key (RSA, P-256,
// Ed25519, …) could never verify one; it is refused at import, with a message
// that says what was found instead, rather than accepted and failing every
// join later. Private keys are refused too: a customer who pastes one has
// leaked it, and Rostrum must not store it.
func ParsePublicKeyPEM(material string) (*ecdsa.PublicKey, error) {
	if strings.TrimSpace(material) == "" {
		return nil, badMaterial(nil, "is empty")
	}
	if len(material) > maxKeyPEMSize {
		return nil, badMaterial(nil, "is %d bytes, more than %d", len(material), maxKeyPEMSize)
	}
	at := strings.Index(material, "-----BEGIN ")
	if at < 0 {
		return nil, badMaterial(nil, "is not PEM: want a -----BEGIN PUBLIC KEY----- block")
	}
	if strings.TrimSpace(material[:at]) != "" {
		return nil, badMaterial(nil, "has text before the PEM block")
	}
	block, rest := pem.Decode([]byte(material[at:]))
	if block == nil {
		return nil, badMaterial(nil, "is not valid PEM")
	}
	switch t := block.Type; {
	case t == "PUBLIC KEY":
	case strings.Contains(t, "PRIVATE KEY"):
		return nil, badMaterial(nil, "is a private key (%s); import only the public key, e.g. the output of `openssl ec -in priv.pem -pubout`", clip(t))
	case t == "RSA PUBLIC KEY":
		return nil, badMaterial(nil, "must be an ECDSA P-384 public key, got RSA")
	case t == "CERTIFICATE":
		return nil, badMaterial(nil, "is a certificate; want a PUBLIC KEY block")
	default:
		return nil, badMaterial(nil, "must be a PUBLIC KEY PEM block, got %q", clip(t))
	}
	// pem.Decode skips blocks it cannot decode and returns a later one, so
	// counting the BEGIN lines is what proves the block above is the only one.
	if strings.Count(material, "-----BEGIN ") != 1 {
		return nil, badMaterial(nil, "must contain exactly one PEM block")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, badMaterial(nil, "has data after the PEM block")
	}
	if len(block.Headers) != 0 {
		return nil, badMaterial(nil, "PUBLIC KEY block must not have headers")
	}
	parsed, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, badMaterial(err, "must be an ECDSA P-384 public key")
	}
	pub, ok := parsed.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return nil, badMaterial(nil, "must be an ECDSA P-384 public key, got %s", keyKind(parsed))
	}
	return pub, nil
}

// keyKind names a key type for error messages.
func keyKind(k any) string {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + curveName(k.Curve)
	case *ecdsa.PrivateKey:
		return "ECDSA " + curveName(k.Curve)
	case *rsa.PublicKey, *rsa.PrivateKey:
		return "RSA"
	case ed25519.PublicKey, ed25519.PrivateKey:
		return "Ed25519"
	case *ecdh.PublicKey:
		return fmt.Sprint(k.Curve())
	case *ecdh.PrivateKey:
		return fmt.Sprint(k.Curve())
	default:
		return fmt.Sprintf("%T", k)
	}
}

// Fingerprint returns the fingerprint shown for an imported public key: the
// MD5 digest of the key's DER-encoded SubjectPublicKeyInfo, as lowercase hex
// pairs separated by colons ("1f:51:ae:…", 47 characters).
//
// IVS does not document how it computes PublicKey.fingerprint. This is the
// convention AWS EC2 uses for key pairs a customer imports, so it is familiar
// to AWS users and reproducible with standard tools:
//
//	openssl pkey -pubin -in public.pem -outform DER | openssl md5 -c
//
// MD5 only identifies the key here; nothing relies on it resisting collisions.
// The result depends on the key alone, not on how its PEM was wrapped. It is
// "" for a key that cannot be encoded (nil, or a curve x509 does not know).
func Fingerprint(pub *ecdsa.PublicKey) string {
	if pub == nil {
		return ""
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := md5.Sum(der)
	h := hex.EncodeToString(sum[:])
	var b strings.Builder
	b.Grow(len(h) + len(sum) - 1)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
