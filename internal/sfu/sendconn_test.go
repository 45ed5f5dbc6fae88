package sfu

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"
)

// The ICE socket's own sends reach IPv4 and IPv6 peers from an IPv4 socket
// and a dual-stack one, and fail cleanly once it is closed.
func TestSendConnSends(t *testing.T) {
	for _, local := range []string{"127.0.0.1:0", "[::]:0"} {
		t.Run(local, func(t *testing.T) {
			c, err := net.ListenPacket("udp", local)
			if err != nil {
				t.Skip(err)
			}
			sc := newSendConn(c.(*net.UDPConn))
			defer sc.Close()
			peers := []string{"127.0.0.1:0"}
			if local != "127.0.0.1:0" {
				peers = append(peers, "[::1]:0")
			}
			for _, peer := range peers {
				p, err := net.ListenPacket("udp", peer)
				if err != nil {
					t.Logf("no %s: %v", peer, err)
					continue
				}
				defer p.Close()
				msg := []byte("packet to " + peer)
				if _, err := sc.WriteTo(msg, p.LocalAddr()); err != nil {
					t.Fatalf("WriteTo %s: %v", p.LocalAddr(), err)
				}
				if w, ok := sc.(interface {
					WriteToAddrPort([]byte, netip.AddrPort) (int, error)
				}); ok {
					if _, err := w.WriteToAddrPort(msg, p.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
						t.Fatalf("WriteToAddrPort %s: %v", p.LocalAddr(), err)
					}
				}
				buf := make([]byte, 100)
				_ = p.SetReadDeadline(time.Now().Add(5 * time.Second))
				n, from, err := p.ReadFrom(buf)
				if err != nil || !bytes.Equal(buf[:n], msg) {
					t.Fatalf("%s received %q, %v", peer, buf[:n], err)
				}
				if got, want := from.(*net.UDPAddr).Port, sc.LocalAddr().(*net.UDPAddr).Port; got != want {
					t.Errorf("sent from port %d, the socket's is %d", got, want)
				}
			}
			_ = sc.Close()
			if _, err := sc.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}); !errors.Is(err, net.ErrClosed) {
				t.Errorf("send after close: %v, want net.ErrClosed", err)
			}
		})
	}
}

// BenchmarkSendConcurrently sends 1,100-byte packets from GOMAXPROCS
// goroutines through one socket, as a spread fan-out does: through Go's
// net.UDPConn (whose writes take turns) and through sendConn (run with
// -cpu 1,2,4).
func BenchmarkSendConcurrently(b *testing.B) {
	for _, direct := range []bool{false, true} {
		b.Run(fmt.Sprintf("direct=%v", direct), func(b *testing.B) {
			sink, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer sink.Close()
			_ = sink.(*net.UDPConn).SetReadBuffer(1 << 20)
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			var pc net.PacketConn = c
			if direct {
				pc = newSendConn(c.(*net.UDPConn))
			}
			defer pc.Close()
			to := sink.LocalAddr()
			b.SetBytes(1100)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				msg := make([]byte, 1100)
				for pb.Next() {
					if _, err := pc.WriteTo(msg, to); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
