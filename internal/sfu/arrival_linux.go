package sfu

import (
	"encoding/binary"
	"net"
	"syscall"
	"unsafe"
)

// recvTimestampOOBSize holds one control message with a struct timespec
// (32 bytes on 64-bit Linux).
const recvTimestampOOBSize = 64

// enableRecvTimestamps asks the kernel for each datagram's receive time
// (SO_TIMESTAMPNS: the wall clock, in nanoseconds).
func enableRecvTimestamps(c *net.UDPConn) bool {
	rc, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return false
	}
	return serr == nil
}

// parseRecvTimestamp finds SCM_TIMESTAMPNS in a control buffer, without
// allocating (syscall.ParseSocketControlMessage makes a slice per call).
func parseRecvTimestamp(oob []byte) (int64, bool) {
	hdr := syscall.SizeofCmsghdr
	var h syscall.Cmsghdr
	lenSize := int(unsafe.Sizeof(h.Len))
	for len(oob) >= hdr {
		var l int
		if lenSize == 8 {
			l = int(binary.NativeEndian.Uint64(oob))
		} else {
			l = int(binary.NativeEndian.Uint32(oob))
		}
		level := int32(binary.NativeEndian.Uint32(oob[lenSize:]))
		typ := int32(binary.NativeEndian.Uint32(oob[lenSize+4:]))
		if l < hdr || l > len(oob) {
			return 0, false
		}
		data := oob[syscall.CmsgLen(0):l]
		if level == syscall.SOL_SOCKET && typ == syscall.SCM_TIMESTAMPNS {
			// struct timespec: two longs.
			word := int(unsafe.Sizeof(uintptr(0)))
			if len(data) < 2*word {
				return 0, false
			}
			if word == 8 {
				return int64(binary.NativeEndian.Uint64(data))*1e9 + int64(binary.NativeEndian.Uint64(data[8:])), true
			}
			return int64(int32(binary.NativeEndian.Uint32(data)))*1e9 + int64(int32(binary.NativeEndian.Uint32(data[4:]))), true
		}
		oob = oob[min(syscall.CmsgSpace(l-hdr), len(oob)):]
	}
	return 0, false
}
