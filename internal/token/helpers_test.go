package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// testNow is the clock of the tests: between iat and exp of testClaims.
var testNow = time.Unix(1763652562+3600, 0)

// testClaims returns claims with every member set, shaped like the us-west-2
// token in IVS-BEHAVIOUR.md §1.1.
func testClaims() Claims {
	return Claims{
		ExpiresAt:     1764862162,
		IssuedAt:      1763652562,
		ParticipantID: "1tFZIqK6yKYz",
		Resource:      "arn:aws:ivs:us-west-2:639934345351:stage/SGZkQ04U7B6h",
		Topic:         "SGZkQ04U7B6h",
		EventsURL:     "wss://global.events.live-video.net",
		WhipURL:       "https://9fa1a3725a35.global-bm.whip.live-video.net",
		UserID:        "ivs-gamelift-test-user",
		Attributes:    map[string]string{"stream_source": "gameplay", "username": "ivs-gamelift-test-user"},
		Capabilities:  Capabilities{Publish: true, Subscribe: true},
		Version:       VersionServer,
	}
}

func mustSigningKey(t testing.TB) *SigningKey {
	t.Helper()
	k, err := GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mustES384Key is a signing key as servers made them before issue 13: P-384,
// signing ES384. Tests of the token's structure use it where they spell an
// ES384 header by hand.
func mustES384Key(t testing.TB) *SigningKey {
	t.Helper()
	k := mustSigningKey(t)
	k.Private = mustECKey(t, elliptic.P384())
	return k
}

// bothKeys are a key of each kind the server may sign with.
func bothKeys(t testing.TB) map[string]*SigningKey {
	return map[string]*SigningKey{"ES256": mustSigningKey(t), "ES384": mustES384Key(t)}
}

func mustECKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSign(t testing.TB, k *SigningKey, c Claims) string {
	t.Helper()
	tok, err := k.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// publicPEM encodes a public key the way `openssl ec -pubout` does.
func publicPEM(t testing.TB, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// customerSign makes a token the way a customer's JWT library does, without
// any code of this package: base64url of the header and payload JSON as
// given, an ECDSA signature over them from crypto/ecdsa's ASN.1 API, converted
// to JOSE's raw r||s.
func customerSign(t testing.TB, priv *ecdsa.PrivateKey, header, payload string) string {
	t.Helper()
	input := enc(header) + "." + enc(payload)
	digest := sha512.Sum384([]byte(input))
	der, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(derToRaw(t, der))
}

func derToRaw(t testing.TB, der []byte) []byte {
	t.Helper()
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) != 0 {
		t.Fatalf("bad DER signature: %v", err)
	}
	raw := make([]byte, 96)
	sig.R.FillBytes(raw[:48])
	sig.S.FillBytes(raw[48:])
	return raw
}

func rawToDER(t testing.TB, raw []byte) []byte {
	t.Helper()
	der, err := asn1.Marshal(struct{ R, S *big.Int }{
		new(big.Int).SetBytes(raw[:len(raw)/2]), new(big.Int).SetBytes(raw[len(raw)/2:]),
	})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// parts splits a token into its three segments.
func parts(t testing.TB, tok string) (h, p, s string) {
	t.Helper()
	seg := strings.Split(tok, ".")
	if len(seg) != 3 {
		t.Fatalf("token has %d parts", len(seg))
	}
	return seg[0], seg[1], seg[2]
}

func decode(t testing.TB, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func needOpenSSL(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl is not on PATH; skipping the check against keys made by OpenSSL")
	}
	return path
}

func runOpenSSL(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(needOpenSSL(t), args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("openssl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func wantErr(t *testing.T, err, sentinel error) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want an error wrapping %v", err, sentinel)
	}
}
