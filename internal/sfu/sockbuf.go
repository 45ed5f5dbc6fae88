package sfu

import (
	"log/slog"
	"net"
	"strconv"
)

// defaultUDPReadBuffer is the receive buffer asked for the engine's one ICE
// UDP socket. Every publisher's media and every subscriber's RTCP arrive
// on it, read by pion's one mux goroutine; while the engine is busy (a
// keyframe fanned out to hundreds of subscribers, or the core taken by
// another process) the kernel holds what arrives in this buffer and drops
// what does not fit (UDP RcvbufErrors). Linux's default (about 208 KiB,
// some 90 full-size packets on loopback) overflows in such a pause; 8 MiB
// holds about 3,500 packets, over a second of twelve 720p publishers.
const defaultUDPReadBuffer = 8 << 20

// sizeReadBuffer asks the kernel for a receive buffer of want bytes on
// conn and returns what it granted (0 when it cannot tell). The kernel caps
// the request at net.core.rmem_max; a process with CAP_NET_ADMIN may go
// past the cap (SO_RCVBUFFORCE), and otherwise a capped buffer is logged
// with the sysctl to raise.
func sizeReadBuffer(conn net.PacketConn, want int, log *slog.Logger) int {
	uc, ok := conn.(*net.UDPConn)
	if !ok || want <= 0 {
		return 0
	}
	if err := uc.SetReadBuffer(want); err != nil {
		log.Warn("sfu: cannot size the ICE UDP socket's receive buffer", "err", err)
	}
	got := readBufferSize(uc)
	if got > 0 && got < want {
		if forceReadBuffer(uc, want) {
			got = readBufferSize(uc)
		}
	}
	switch {
	case got <= 0:
	case got < want:
		log.Warn("sfu: the kernel capped the ICE UDP socket's receive buffer; bursts may be dropped (UDP RcvbufErrors). Raise the cap: sysctl -w net.core.rmem_max="+strconv.Itoa(want),
			"asked", want, "granted", got)
	default:
		log.Debug("sfu: ICE UDP socket receive buffer", "granted", got)
	}
	return got
}
