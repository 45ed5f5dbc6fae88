package sfu

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"testing"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// The keys the direct path derives from the key log and the ServerHello are
// the ones pion's DTLS exports for DTLS-SRTP (RFC 5764 §4.2), for every
// cipher suite pion's WebRTC offers and every SRTP profile: a real
// handshake between two pion DTLS endpoints over loopback UDP, the server
// reporting to a directConn through the same two hooks the engine uses.
func TestDirectKeysMatchTheDTLSExporter(t *testing.T) {
	suites := []dtls.CipherSuiteID{
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		dtls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	}
	profiles := []dtls.SRTPProtectionProfile{dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80}
	cert, err := selfsign.GenerateSelfSigned()
	must(t, err)
	for _, suite := range suites {
		for _, profile := range profiles {
			t.Run(fmt.Sprintf("%s/%#04x", dtls.CipherSuiteName(suite), uint16(profile)), func(t *testing.T) {
				c := &directConn{}
				serverCfg := &dtls.Config{
					Certificates: []tls.Certificate{cert}, CipherSuites: []dtls.CipherSuiteID{suite},
					SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{profile},
					ExtendedMasterSecret:   dtls.RequireExtendedMasterSecret,
					KeyLogWriter:           keyLogWriter{c},
					ServerHelloMessageHook: func(m handshake.MessageServerHello) handshake.Message {
						c.serverHello(&m)
						return &m
					},
				}
				clientCfg := &dtls.Config{
					Certificates: []tls.Certificate{cert}, CipherSuites: []dtls.CipherSuiteID{suite},
					SRTPProtectionProfiles: profiles, InsecureSkipVerify: true,
					ExtendedMasterSecret: dtls.RequireExtendedMasterSecret,
				}
				sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				must(t, err)
				cc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				must(t, err)
				server, err := dtls.Server(sc, cc.LocalAddr(), serverCfg)
				must(t, err)
				defer server.Close()
				client, err := dtls.Client(cc, sc.LocalAddr(), clientCfg)
				must(t, err)
				defer client.Close()
				done := make(chan error, 1)
				go func() { done <- server.Handshake() }()
				must(t, client.Handshake())
				must(t, <-done)

				keys, err := c.deriveKeys()
				must(t, err)
				if keys.profile != srtp.ProtectionProfile(profile) {
					t.Fatalf("profile %v, want %v", keys.profile, profile)
				}
				st, ok := client.ConnectionState()
				if !ok {
					t.Fatal("no connection state")
				}
				keyLen, _ := keys.profile.KeyLen()
				saltLen, _ := keys.profile.SaltLen()
				m, err := st.ExportKeyingMaterial(exporterLabel, nil, 2*(keyLen+saltLen))
				must(t, err)
				if !bytes.Equal(keys.key, m[keyLen:2*keyLen]) || !bytes.Equal(keys.salt, m[2*keyLen+saltLen:]) {
					t.Fatal("the derived server key and salt are not what DTLS exports")
				}
				if c.masterSecret != nil {
					t.Error("the master secret is kept after the keys were derived")
				}
			})
		}
	}
}

// pairChanged sends directly only on a UDP pair on the engine's own port
// to a remote given as an IP address.
func TestDirectPathFollowsTheSelectedPair(t *testing.T) {
	c := &directConn{e: &Engine{udpPort: 7882}}
	pair := func(proto webrtc.ICEProtocol, localPort uint16, remote string) *webrtc.ICECandidatePair {
		return webrtc.NewICECandidatePair(
			&webrtc.ICECandidate{Protocol: proto, Address: "192.0.2.1", Port: localPort},
			&webrtc.ICECandidate{Protocol: proto, Address: remote, Port: 5000},
		)
	}
	for _, tc := range []struct {
		pair *webrtc.ICECandidatePair
		want string
	}{
		{pair(webrtc.ICEProtocolUDP, 7882, "198.51.100.7"), "198.51.100.7:5000"},
		{pair(webrtc.ICEProtocolUDP, 7882, "2001:db8::1"), "[2001:db8::1]:5000"},
		{pair(webrtc.ICEProtocolUDP, 7882, "::ffff:198.51.100.7"), "198.51.100.7:5000"},
		{pair(webrtc.ICEProtocolTCP, 7882, "198.51.100.7"), ""},
		{pair(webrtc.ICEProtocolUDP, 9999, "198.51.100.7"), ""},
		{pair(webrtc.ICEProtocolUDP, 7882, "abcd.local"), ""},
		{nil, ""},
	} {
		c.pairChanged(tc.pair)
		got := ""
		if a := c.addr.Load(); a != nil {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("pair %v: sends to %q, want %q", tc.pair, got, tc.want)
		}
	}
}
