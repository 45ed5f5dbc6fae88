package sfu

import (
	"time"

	"github.com/pion/rtcp"
)

// Sender reports for subscribers. A receiver lines up audio and video by
// mapping each stream's RTP timestamps to the NTP times in its sender
// reports; for that mapping to be right across the publisher's tracks, it
// must be the publisher's own. So each down-track's report is the
// publisher's last report for the encoding being forwarded, moved forward
// by the time since it arrived and shifted by the down-track's timestamp
// offset. Before the publisher has sent a report, the down-track reports
// its last packet against the local clock.

// ntpEpochOffset is the number of seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2_208_988_800

func ntpTime(t time.Time) uint64 {
	secs := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1_000_000_000
	return secs<<32 | frac
}

// ntpAdd adds ns nanoseconds to an NTP timestamp.
func ntpAdd(ntp uint64, ns int64) uint64 {
	if ns <= 0 {
		return ntp
	}
	secs := uint64(ns / 1_000_000_000)
	frac := uint64(ns%1_000_000_000) << 32 / 1_000_000_000
	return ntp + secs<<32 + frac
}

// senderReport builds the down-track's report, or returns false when it
// is not sending.
func (d *downTrack) senderReport(now time.Time, mono int64) (rtcp.SenderReport, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.started || d.writer == nil {
		return rtcp.SenderReport{}, false
	}
	cur := d.current.Load()
	if cur < 0 {
		// Paused: no media, and no report that could contradict the
		// publisher-clock ones before and after.
		return rtcp.SenderReport{}, false
	}
	sr := rtcp.SenderReport{SSRC: d.ssrc, PacketCount: d.packets, OctetCount: d.octets}
	if src := d.up.layers[cur].lastSR(); src.ok {
		el := mono - src.at
		sr.NTPTime = ntpAdd(src.ntp, el)
		sr.RTPTime = src.rtp + rtpTicks(max(el, 0), d.up.clock) - d.tsOffset
		return sr, true
	}
	sr.NTPTime = ntpTime(now)
	sr.RTPTime = d.lastOutTS + rtpTicks(max(mono-d.lastArrival, 0), d.up.clock)
	return sr, true
}

// sendReports sends one compound RTCP packet with a sender report for each
// down-track that has started.
func (s *Subscriber) sendReports(now time.Time) {
	mono := nanotime()
	pkts := make([]rtcp.Packet, 0, len(s.downs))
	for _, d := range s.downs {
		if sr, ok := d.senderReport(now, mono); ok {
			pkts = append(pkts, &sr)
		}
	}
	if len(pkts) == 0 || s.closed.Load() {
		return
	}
	var err error
	if s.lean != nil {
		err = s.lean.writeRTCP(pkts)
	} else {
		err = s.pc.WriteRTCP(pkts)
	}
	if err != nil {
		s.log.Debug("sending sender reports", "err", err)
	}
}
