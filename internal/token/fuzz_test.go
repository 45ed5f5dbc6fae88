package token

import (
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds arbitrary strings to Parse. It must never panic, and what it
// accepts must hold up: alg ES384 or ES256 with a signature of its length (a
// key of each kind signs the seeds) over a prefix of the
// input, claims that survive a JSON round trip, and no signature that verifies
// under a key the fuzzer cannot have signed with.
func FuzzParse(f *testing.F) {
	k := mustES384Key(f)
	stranger := mustES384Key(f) // signs nothing
	tok := mustSign(f, k, testClaims())
	h, pl, s := parts(f, tok)
	f.Add(tok)
	k256 := mustSigningKey(f)
	stranger256 := mustSigningKey(f)
	f.Add(mustSign(f, k256, testClaims()))
	f.Add(h + "." + pl + ".")
	f.Add(enc(`{"alg":"none"}`) + "." + pl + ".")
	f.Add(enc(`{"alg":"ES384","crit":[]}`) + "." + pl + "." + s)
	f.Add(enc(`{"alg":"ES384"}`) + "." + enc(`{"exp":1.5e9,"attributes":{"a":"b"},"capabilities":{"allow_publish":false}}`) + "." + s)
	f.Add(enc(`{"alg":"ES384"}`) + "." + enc(`{"jti":"\ud800","user_id":null}`) + "." + s)
	f.Add("..")
	f.Add("")
	f.Add(strings.Repeat("A", 200))

	f.Fuzz(func(t *testing.T, raw string) {
		p, err := Parse(raw)
		if err != nil {
			if p != nil {
				t.Fatal("Parse returned a token and an error")
			}
			for _, sentinel := range []error{ErrMalformed, ErrUnsupportedAlg, ErrBadSignature} {
				if errors.Is(err, sentinel) {
					return
				}
			}
			t.Fatalf("error wraps no sentinel: %v", err)
		}
		if len(raw) > MaxTokenSize {
			t.Fatalf("accepted %d bytes", len(raw))
		}
		m, ok := methodForAlg(p.Header.Alg)
		if !ok || len(p.signature) != m.sigSize || !strings.HasPrefix(raw, p.signingInput+".") {
			t.Fatalf("accepted an inconsistent token: %+v", p)
		}
		mine, other := k, stranger
		if m.alg == AlgES256 {
			mine, other = k256, stranger256
		}
		if err := p.Verify(other.Public()); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify under an unrelated key: %v", err)
		}
		_ = p.Verify(mine.Public()) // may succeed for the seed; must not panic
		_ = p.Claims.Validate(time.Unix(1763652562, 0), time.Minute)

		js, err := json.Marshal(p.Claims)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var back Claims
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatalf("claims do not read back: %v\n%s", err, js)
		}
		if !reflect.DeepEqual(back, p.Claims) {
			t.Fatalf("claims changed in a round trip:\n%+v\n%+v", p.Claims, back)
		}
	})
}

// FuzzParsePublicKeyPEM feeds arbitrary material to ParsePublicKeyPEM. It must
// never panic; what it accepts must be a P-384 key with a fingerprint, and its
// errors must match ErrInvalidPublicKey and speak of publicKeyMaterial.
func FuzzParsePublicKeyPEM(f *testing.F) {
	p384 := mustECKey(f, elliptic.P384())
	good := publicPEM(f, &p384.PublicKey)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(strings.ReplaceAll(good, "\n", "\r\n"))
	f.Add(good + good)
	f.Add(publicPEM(f, &rsaKey.PublicKey))
	f.Add(publicPEM(f, &mustECKey(f, elliptic.P256()).PublicKey))
	f.Add(publicPEM(f, edPub))
	f.Add("-----BEGIN PUBLIC KEY-----\n\n-----END PUBLIC KEY-----")
	f.Add("-----BEGIN PUBLIC KEY-----\nMA==\n-----END PUBLIC KEY-----\n")
	f.Add("")

	f.Fuzz(func(t *testing.T, material string) {
		pub, err := ParsePublicKeyPEM(material)
		if err != nil {
			if pub != nil {
				t.Fatal("returned a key and an error")
			}
			if !errors.Is(err, ErrInvalidPublicKey) || !strings.HasPrefix(err.Error(), "publicKeyMaterial ") {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		if pub.Curve != elliptic.P384() {
			t.Fatalf("accepted a key on %s", pub.Curve.Params().Name)
		}
		if fp := Fingerprint(pub); len(fp) != 47 {
			t.Fatalf("fingerprint %q", fp)
		}
		again, err := ParsePublicKeyPEM(publicPEM(t, pub))
		if err != nil || !again.Equal(pub) {
			t.Fatalf("re-encoded key does not read back: %v", err)
		}
	})
}
