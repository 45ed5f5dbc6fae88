package sfu

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// Every connection presents the engine's one certificate, and a
// certificate about to expire is replaced.
func TestEngineSharesItsDTLSCertificate(t *testing.T) {
	e := newTestEngine(t)
	var prints []string
	for _, role := range []peerRole{rolePublisher, roleFixedSubscriber, roleSubscriber} {
		pc, _, err := e.newPeerConnection(role, initialBitrate, role != rolePublisher)
		must(t, err)
		certs := pc.GetConfiguration().Certificates
		if len(certs) != 1 {
			t.Fatalf("%d certificates", len(certs))
		}
		fp, err := certs[0].GetFingerprints()
		must(t, err)
		prints = append(prints, fp[0].Value)
		must(t, pc.Close())
	}
	if prints[0] != prints[1] || prints[1] != prints[2] {
		t.Fatalf("connections present different certificates: %v", prints)
	}

	sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	expiring, err := webrtc.NewCertificate(sk, x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	})
	must(t, err)
	e.cert.cur.Store(expiring)
	got, err := e.cert.get()
	must(t, err)
	if !got.Expires().After(time.Now().Add(certRenewBefore)) || got.Equals(*expiring) {
		t.Fatalf("a certificate expiring at %v was not replaced (got one expiring at %v)", expiring.Expires(), got.Expires())
	}
}
