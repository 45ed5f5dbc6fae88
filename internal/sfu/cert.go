package sfu

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// certificate is the DTLS certificate every peer connection of the engine
// presents. pion makes a key pair and a self-signed certificate for each
// connection it is not given one for: CPU on every join (a key generation
// and a signature) and a few KiB of heap a connection for the key, the
// certificate and its parsed form. A DTLS certificate in WebRTC only binds
// the connection to the fingerprint its SDP carries (RFC 8827 §6.5), which
// the peer receives over the signalling's HTTPS, so one for all the
// server's connections is as good as one each: media servers commonly do
// so. It is replaced before it expires (pion makes it valid for a month,
// and refuses an expired one).
type certificate struct {
	cur atomic.Pointer[webrtc.Certificate]
	// asTLS is cur in pion/dtls's form, for lean connections (lean.go).
	asTLS atomic.Pointer[tlsCertPair]
	mu    sync.Mutex // serialises making a new one
}

// certRenewBefore is how long before its expiry the certificate is
// replaced: connections made just before keep theirs, which is still valid
// for as long as any connection lives.
const certRenewBefore = 24 * time.Hour

func (c *certificate) get() (webrtc.Certificate, error) {
	if cur := c.cur.Load(); cur != nil && time.Until(cur.Expires()) >= certRenewBefore {
		return *cur, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.cur.Load(); cur == nil || time.Until(cur.Expires()) < certRenewBefore {
		sk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return webrtc.Certificate{}, fmt.Errorf("sfu: DTLS key: %w", err)
		}
		cert, err := webrtc.GenerateCertificate(sk)
		if err != nil {
			return webrtc.Certificate{}, fmt.Errorf("sfu: DTLS certificate: %w", err)
		}
		c.cur.Store(cert)
	}
	return *c.cur.Load(), nil
}

type tlsCertPair struct {
	of   *webrtc.Certificate
	cert tls.Certificate
}

// getTLS is the current certificate as pion's DTLS takes it, converted
// once per certificate.
func (c *certificate) getTLS() (tls.Certificate, webrtc.Certificate, error) {
	cert, err := c.get()
	if err != nil {
		return tls.Certificate{}, cert, err
	}
	cur := c.cur.Load()
	if p := c.asTLS.Load(); p != nil && p.of == cur {
		return p.cert, *cur, nil
	}
	t, err := tlsCertificate(*cur)
	if err != nil {
		return tls.Certificate{}, cert, err
	}
	c.asTLS.Store(&tlsCertPair{of: cur, cert: t})
	return t, *cur, nil
}
