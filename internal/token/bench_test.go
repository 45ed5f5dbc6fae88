package token

import "testing"

// BenchmarkSign is the cost of minting one token (CreateParticipantToken,
// CreateStage with participantTokenConfigurations): ES256 with the keys
// servers make since issue 13, ES384 with a key made before.
func BenchmarkSign(b *testing.B) {
	for _, alg := range []string{AlgES256, AlgES384} {
		b.Run(alg, func(b *testing.B) {
			k := benchKey(b, alg)
			c := testClaims()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := k.Sign(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchKey(b *testing.B, alg string) *SigningKey {
	if alg == AlgES384 {
		return mustES384Key(b)
	}
	return mustSigningKey(b)
}

// BenchmarkVerify is the signature check done once per join; with
// BenchmarkParse it bounds how many joins per second a core can admit.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []string{AlgES256, AlgES384} {
		b.Run(alg, func(b *testing.B) {
			k := benchKey(b, alg)
			p, err := Parse(mustSign(b, k, testClaims()))
			if err != nil {
				b.Fatal(err)
			}
			pub := k.Public()
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Verify(pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse is the decoding that precedes Verify.
func BenchmarkParse(b *testing.B) {
	tok := mustSign(b, mustSigningKey(b), testClaims())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}
