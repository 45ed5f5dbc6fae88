package output

import (
	"fmt"
	"math"
	"strings"

	"github.com/rostrum-dev/rostrum/internal/ffmpeg"
)

// readPlaylist returns the segments ffmpeg's media playlist lists
// (ffmpeg.ReadPlaylist); ended reports an EXT-X-ENDLIST.
func readPlaylist(b []byte) (segs []segment, ended bool) {
	listed, ended := ffmpeg.ReadPlaylist(b)
	for _, s := range listed {
		segs = append(segs, segment{uri: s.URI, dur: s.Duration})
	}
	return segs, ended
}

// mediaPlaylist renders a rendition's playlist.m3u8: EVENT while
// recording, VOD with EXT-X-ENDLIST at the end; no PROGRAM-DATE-TIME (IVS's
// composite recordings have none). Where ffmpeg was started again the
// playlist says EXT-X-DISCONTINUITY.
func mediaPlaylist(segs []segment, target int, vod bool) []byte {
	for _, s := range segs {
		target = max(target, int(math.Ceil(s.dur-0.001)))
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:3\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", max(target, 1))
	b.WriteString("#EXT-X-MEDIA-SEQUENCE:0\n")
	if vod {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	} else {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	for _, s := range segs {
		if s.disc {
			b.WriteString("#EXT-X-DISCONTINUITY\n")
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", s.dur, s.uri)
	}
	if vod {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// peakBandwidth is the highest bit rate of a segment, as EXT-X-STREAM-INF's
// BANDWIDTH wants it.
func peakBandwidth(segs []segment) int64 {
	var peak int64
	for _, s := range segs {
		if s.dur > 0.5 {
			peak = max(peak, int64(float64(s.bytes)*8/s.dur))
		}
	}
	return peak
}
