package sfu

import "sync"

const (
	// cacheSlots is how many recent packets each published video encoding
	// keeps for retransmission: about two seconds of a 2.5 Mbit/s layer,
	// far longer than a retransmission is still useful.
	cacheSlots = 512
	// maxPacket is the largest RTP packet the engine reads or caches; pion's
	// receive MTU is smaller, so nothing that arrives is ever cut.
	maxPacket = 1500
)

// packetCache keeps the last cacheSlots packets of one published encoding,
// indexed by sequence number, so that subscribers' NACKs are answered from
// one copy per publisher instead of one per subscriber. Its lock is taken by
// the encoding's reader once per packet and by subscribers only while they
// look up a retransmission: it is never shared across published tracks.
type packetCache struct {
	mu    sync.Mutex
	data  []byte // cacheSlots × maxPacket, allocated on first use
	size  [cacheSlots]uint16
	seq   [cacheSlots]uint32 // low 32 bits of the extended number: a slot is never mistaken for an older one
	valid [cacheSlots]bool
}

// put stores the packet with extended sequence number seq and reports
// whether it is new. A packet the cache holds already is a copy: the
// publisher answered the engine's NACK more than once, or the network
// duplicated it, and forwarding it again would give every subscriber the
// packet twice. A packet older than the slot's (more than cacheSlots
// behind the newest) is not stored, so it cannot evict a newer one, and
// is not new either: it is far too late to be of use.
func (c *packetCache) put(seq uint64, pkt []byte) bool {
	if len(pkt) > maxPacket {
		return true // forwarded, just not kept for retransmission
	}
	i := int(seq % cacheSlots)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.valid[i] && int32(uint32(seq)-c.seq[i]) <= 0 {
		return false
	}
	if c.data == nil {
		c.data = make([]byte, cacheSlots*maxPacket)
	}
	copy(c.data[i*maxPacket:], pkt)
	c.size[i], c.seq[i], c.valid[i] = uint16(len(pkt)), uint32(seq), true
	return true
}

// get copies the packet whose extended sequence number has seq as its low
// 32 bits into dst and returns its length, or 0 when it is no longer (or
// never was) cached.
func (c *packetCache) get(seq uint32, dst []byte) int {
	i := int(seq % cacheSlots)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid[i] || c.seq[i] != seq || int(c.size[i]) > len(dst) {
		return 0
	}
	return copy(dst, c.data[i*maxPacket:i*maxPacket+int(c.size[i])])
}
