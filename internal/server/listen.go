package server

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// listenError says which flag moves a listener whose address is taken
// (typically by a second server on the same machine), or passes err on.
func listenError(err error, what, flag, addr string) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s: listen on %s (%s): %w", what, addr, flag, err)
	}
	return fmt.Errorf("%s: %s is already in use (another rostrum serve on this machine?): choose another with %s", what, addr, flag)
}

// engineError says which flag moves a media port that is taken.
func engineError(err error, udpPort, tcpPort int) error {
	var op *net.OpError
	if !errors.Is(err, syscall.EADDRINUSE) || !errors.As(err, &op) {
		return fmt.Errorf("media engine: %w", err)
	}
	if op.Net == "udp" || op.Net == "udp4" || op.Net == "udp6" {
		return fmt.Errorf("media: UDP port %d is already in use (another rostrum serve on this machine?): choose another with --rtc-udp-port (0 picks a free port)", udpPort)
	}
	return fmt.Errorf("media: TCP port %d is already in use (another rostrum serve on this machine?): choose another with --rtc-tcp-port (0 picks a free port, -1 turns media over TCP off)", tcpPort)
}

// MediaAddrs are the media plane's UDP and TCP addresses (TCP nil when
// off), as bound: useful when --rtc-udp-port or --rtc-tcp-port was 0.
func (s *Server) MediaAddrs() (udp, tcp net.Addr) { return s.engine.UDPAddr(), s.engine.TCPAddr() }
