package token

import (
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestGenerateSigningKey(t *testing.T) {
	a, b := mustSigningKey(t), mustSigningKey(t)
	idPattern := regexp.MustCompile(`^[A-Za-z0-9_-]{16}$`)
	for _, k := range []*SigningKey{a, b} {
		if !idPattern.MatchString(k.ID) {
			t.Errorf("key id %q is not 16 base64url characters", k.ID)
		}
		if k.Private.Curve != elliptic.P256() || k.Alg() != AlgES256 {
			t.Errorf("curve %s, alg %s: new keys sign ES256", k.Private.Curve.Params().Name, k.Alg())
		}
		if !k.Public().Equal(&k.Private.PublicKey) {
			t.Error("Public is not the private key's public half")
		}
	}
	if a.ID == b.ID {
		t.Error("two keys share an id")
	}
	if a.Private.Equal(b.Private) {
		t.Error("two keys are equal")
	}
	var none *SigningKey
	if none.Public() != nil || (&SigningKey{}).Public() != nil {
		t.Error("Public of an empty key is not nil")
	}
}

func TestSigningKeyPEMRoundTrip(t *testing.T) {
	k := mustSigningKey(t)
	pemBytes, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(pemBytes), "Key-Id: "+k.ID+"\n-----BEGIN PRIVATE KEY-----\n") {
		t.Errorf("unexpected encoding:\n%s", pemBytes)
	}
	back, err := ParseSigningKeyPEM(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != k.ID {
		t.Errorf("kid = %q, want %q", back.ID, k.ID)
	}
	if !back.Private.Equal(k.Private) {
		t.Error("private key changed")
	}
	// A token from before the reload verifies after it, and the other way.
	for _, pair := range [][2]*SigningKey{{k, back}, {back, k}} {
		p, err := Parse(mustSign(t, pair[0], testClaims()))
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Kid != k.ID {
			t.Errorf("kid in token = %q", p.Header.Kid)
		}
		if err := p.Verify(pair[1].Public()); err != nil {
			t.Error(err)
		}
	}
	// CRLF line endings (a file edited on Windows) still load.
	if _, err := ParseSigningKeyPEM([]byte(strings.ReplaceAll(string(pemBytes), "\n", "\r\n"))); err != nil {
		t.Errorf("CRLF: %v", err)
	}
}

func TestParseSigningKeyPEMRejects(t *testing.T) {
	k := mustSigningKey(t)
	good, err := k.MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	block := string(good[strings.Index(string(good), "-----BEGIN"):])
	pkcs8 := func(key any) string {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return "Key-Id: abc\n" + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	encrypted := strings.Replace(block, "-----BEGIN PRIVATE KEY-----\n",
		"-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00000000000000000000000000000000\n\n", 1)

	for name, in := range map[string]string{
		"empty":            "",
		"garbage":          "not a key",
		"no Key-Id":        block,
		"empty Key-Id":     "Key-Id:\n" + block,
		"two Key-Id lines": "Key-Id: a\nKey-Id: b\n" + block,
		"other text":       "Key-Id: a\nhello\n" + block,
		"ARN as Key-Id":    "Key-Id: arn:aws:ivs:us-east-1:123456789012:public-key/AbCdEfGhIjKl\n" + block,
		"two blocks":       string(good) + block,
		"trailing data":    string(good) + "junk\n",
		"encrypted":        "Key-Id: a\n" + encrypted,
		"public key block": "Key-Id: a\n" + publicPEM(t, k.Public()),
		"P-521 key":        pkcs8(mustECKey(t, elliptic.P521())),
		"RSA key":          pkcs8(rsaKey),
		"truncated":        string(good[:len(good)-40]),
		"corrupt DER":      "Key-Id: a\n" + string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{0x30, 0x03, 0x02, 0x01, 0x00}})),
		"too large":        string(good) + strings.Repeat(" ", maxKeyPEMSize),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseSigningKeyPEM([]byte(in))
			if got != nil {
				t.Fatalf("accepted: %+v", got)
			}
			wantErr(t, err, ErrInvalidSigningKey)
		})
	}
}

// An operator can bring a key made with OpenSSL (SEC 1 "EC PRIVATE KEY") by
// adding a Key-Id line, and OpenSSL can read what MarshalPEM writes.
func TestSigningKeyPEMInteropWithOpenSSL(t *testing.T) {
	needOpenSSL(t)
	dir := t.TempDir()
	sec1 := runOpenSSL(t, dir, "ecparam", "-name", "secp384r1", "-genkey", "-noout")
	k, err := ParseSigningKeyPEM(append([]byte("Key-Id: from-openssl\n"), sec1...))
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != "from-openssl" || k.Private.Curve != elliptic.P384() {
		t.Errorf("got %q on %s", k.ID, k.Private.Curve.Params().Name)
	}

	sec1 = runOpenSSL(t, dir, "ecparam", "-name", "prime256v1", "-genkey", "-noout")
	k, err = ParseSigningKeyPEM(append([]byte("Key-Id: from-openssl\n"), sec1...))
	if err != nil {
		t.Fatal(err)
	}
	if k.Private.Curve != elliptic.P256() {
		t.Errorf("got %s", k.Private.Curve.Params().Name)
	}

	ours, err := mustSigningKey(t).MarshalPEM()
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "ours.pem"), string(ours))
	out := runOpenSSL(t, dir, "pkey", "-in", "ours.pem", "-noout", "-text")
	if !strings.Contains(string(out), "P-256") && !strings.Contains(string(out), "prime256v1") {
		t.Errorf("openssl does not see a P-256 key:\n%s", out)
	}
}
