package output

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// readPlaylist returns the segments ffmpeg's media playlist lists (ffmpeg
// lists a segment once its file is complete); ended reports its
// EXT-X-ENDLIST. A playlist read while ffmpeg rewrites it may end mid-line:
// only whole lines count. Segment names with a path are ignored.
func readPlaylist(b []byte) (segs []segment, ended bool) {
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	dur := -1.0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#EXTINF:"):
			v := strings.TrimPrefix(line, "#EXTINF:")
			if i := strings.IndexByte(v, ','); i >= 0 {
				v = v[:i]
			}
			d, err := strconv.ParseFloat(v, 64)
			if err != nil || d < 0 || math.IsNaN(d) || math.IsInf(d, 0) {
				dur = -1
				continue
			}
			dur = d
		case line == "#EXT-X-ENDLIST":
			ended = true
		case line == "" || strings.HasPrefix(line, "#"):
		default:
			if dur >= 0 && !strings.ContainsAny(line, "/\\") && line != ".." && line != "." {
				segs = append(segs, segment{uri: line, dur: dur})
			}
			dur = -1
		}
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
