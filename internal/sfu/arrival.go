package sfu

import (
	"encoding/binary"
	"net"
	"net/netip"
	"sync/atomic"
	"time"
)

// When a publisher's packets arrived, for its transport-wide feedback
// (twcc.go). The engine's one UDP socket is read by pion's ICE mux on one
// goroutine; when that goroutine is scheduled late (a loaded machine, a
// garbage collection), the datagrams the kernel queued meanwhile are read
// back to back, and a time taken at the read puts packets sent 10 ms apart
// within a millisecond. Chrome measured its start-up probes so from
// Rostrum's feedback ("receive/send ratio too high", e.g. 11 ms of sending
// received in 2 ms) and threw them away. So the socket asks the kernel for
// each datagram's receive time (SO_TIMESTAMPNS, arrival_linux.go), and the
// time of every RTP packet, by SSRC and sequence number (both in the clear
// in SRTP), goes into an arrivalTable that the publisher's feedback reads.

// arrivalTableSize is how many packets the table remembers, engine-wide:
// its reader looks a packet up within milliseconds of the socket read
// (pion's SRTP session decrypts it on its own goroutine), so this covers
// over a hundred milliseconds at 100,000 packets a second in.
const arrivalTableSize = 1 << 14

// arrivalTable maps (SSRC, sequence number) to an arrival time (nanotime).
// Slots are overwritten, never cleared; a slot written while it is read is
// detected by reading its key twice. Colliding keys lose the older entry,
// which then reads as unknown.
type arrivalTable struct {
	slots [arrivalTableSize]arrivalSlot
}

type arrivalSlot struct {
	key atomic.Uint64 // 1<<63 | ssrc<<16 | seq
	at  atomic.Int64
}

func arrivalKey(ssrc uint32, seq uint16) uint64 {
	return 1<<63 | uint64(ssrc)<<16 | uint64(seq)
}

func arrivalIndex(ssrc uint32, seq uint16) uint32 {
	// SSRCs are random, sequence numbers consecutive: mixing the SSRC in
	// spreads streams over the table, consecutive packets over slots.
	return (ssrc*0x9E3779B1 + uint32(seq)) % arrivalTableSize
}

func (t *arrivalTable) put(ssrc uint32, seq uint16, at int64) {
	s := &t.slots[arrivalIndex(ssrc, seq)]
	s.key.Store(0) // readers of this slot miss until both are written
	s.at.Store(at)
	s.key.Store(arrivalKey(ssrc, seq))
}

// get returns the arrival time (nanotime) of the packet, if remembered.
func (t *arrivalTable) get(ssrc uint32, seq uint16) (int64, bool) {
	if t == nil {
		return 0, false
	}
	s := &t.slots[arrivalIndex(ssrc, seq)]
	k := arrivalKey(ssrc, seq)
	if s.key.Load() != k {
		return 0, false
	}
	at := s.at.Load()
	if s.key.Load() != k {
		return 0, false
	}
	return at, true
}

// noteRTP records a datagram's arrival if it is an RTP packet: version 2
// and a payload type outside RTCP's range (RFC 5761's demultiplexing; STUN
// and DTLS start with other first bytes).
func (t *arrivalTable) noteRTP(b []byte, at int64) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return
	}
	if pt := b[1] & 0x7f; pt >= 64 && pt <= 95 { // RTCP 192-223 with the marker bit
		return
	}
	t.put(binary.BigEndian.Uint32(b[8:12]), binary.BigEndian.Uint16(b[2:4]), at)
}

// stampedConn is the engine's UDP socket as pion's ICE mux reads it, noting
// each RTP packet's arrival (the kernel's receive time where the socket
// gives it, the read's otherwise). Reads are the socket's own (with the
// kernel's times); writes, deadlines and closing are the wrapped
// connection's (sendConn's parallel sends). It offers the mux the
// allocation-free AddrPort methods, as the bare socket does.
type stampedConn struct {
	net.PacketConn // what sends (sendConn, or the socket)
	udp            *net.UDPConn
	t              *arrivalTable
	kernel         bool // the socket gives receive times (SO_TIMESTAMPNS)
	oobSize        int
	send           addrPortWriter // c's allocation-free send, or the socket's
	// divert takes the datagrams of lean connections (lean.go) before
	// pion's mux sees them.
	divert func([]byte, netip.AddrPort) bool
}

type addrPortWriter interface {
	WriteToAddrPort([]byte, netip.AddrPort) (int, error)
}

// udpAddrPortWriter sends with the socket's own method.
type udpAddrPortWriter struct{ *net.UDPConn }

func (u udpAddrPortWriter) WriteToAddrPort(b []byte, a netip.AddrPort) (int, error) {
	return u.WriteToUDPAddrPort(b, a)
}

// stampArrivals wraps c, whose socket is udp, to note arrivals in t.
func stampArrivals(c net.PacketConn, udp *net.UDPConn, t *arrivalTable, divert func([]byte, netip.AddrPort) bool) net.PacketConn {
	s := &stampedConn{PacketConn: c, udp: udp, t: t, divert: divert}
	// Looked up once: the send is the hot path (per packet per subscriber).
	if w, ok := c.(addrPortWriter); ok {
		s.send = w
	} else {
		s.send = udpAddrPortWriter{udp}
	}
	s.kernel = enableRecvTimestamps(udp)
	if s.kernel {
		s.oobSize = recvTimestampOOBSize
	}
	return s
}

// ReadFromAddrPort reads one datagram (pion's ICE mux reads on one
// goroutine; the control buffer lives on its stack).
func (s *stampedConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	var oob [recvTimestampOOBSize]byte
	n, oobn, _, addr, err := s.udp.ReadMsgUDPAddrPort(b, oob[:s.oobSize])
	for err == nil && s.divert != nil && s.divert(b[:n], addr) {
		n, oobn, _, addr, err = s.udp.ReadMsgUDPAddrPort(b, oob[:s.oobSize])
	}
	if err != nil {
		return n, addr, err
	}
	at := nanotime()
	if s.kernel {
		if wall, ok := parseRecvTimestamp(oob[:oobn]); ok {
			// The kernel's time is the wall clock's: its age, taken
			// from the wall clock now, is subtracted from nanotime.
			if age := time.Now().UnixNano() - wall; age > 0 && age < int64(time.Second) {
				at -= age
			}
		}
	}
	s.t.noteRTP(b[:n], at)
	return n, addr, nil
}

// ReadFrom implements net.PacketConn for readers other than pion's mux.
func (s *stampedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, addr, err := s.ReadFromAddrPort(b)
	if !addr.IsValid() {
		return n, nil, err
	}
	return n, net.UDPAddrFromAddrPort(addr), err
}

// WriteToAddrPort is the wrapped connection's.
func (s *stampedConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return s.send.WriteToAddrPort(b, addr)
}
