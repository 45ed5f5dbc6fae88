package recording

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"

	"github.com/rostrum-dev/rostrum/internal/ffmpeg"
)

// segment is one fMP4 media segment of a recording.
type segment struct {
	URI      string  `json:"uri"` // e.g. "7.mp4", relative to the rendition folder
	Duration float64 `json:"duration"`
	Bytes    int64   `json:"bytes"`
	Run      int     `json:"run"` // which publisher connection made it
}

// readFFmpegPlaylist returns the segments ffmpeg's media playlist lists
// (ffmpeg.ReadPlaylist); ended reports an EXT-X-ENDLIST.
func readFFmpegPlaylist(b []byte) (segs []segment, ended bool) {
	listed, ended := ffmpeg.ReadPlaylist(b)
	for _, s := range listed {
		segs = append(segs, segment{URI: s.URI, Duration: s.Duration})
	}
	return segs, ended
}

// mediaPlaylist renders the rendition's playlist: EVENT while recording,
// VOD (with EXT-X-ENDLIST) when done. Each publisher connection has its own
// initialization segment; where the connection changes, the playlist says
// so with EXT-X-DISCONTINUITY and the new EXT-X-MAP.
func mediaPlaylist(segs []segment, initName func(run int) string, target int, vod bool) []byte {
	for _, s := range segs {
		target = max(target, int(math.Ceil(s.Duration-0.001)))
	}
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n")
	fmt.Fprintf(&b, "#EXT-X-TARGETDURATION:%d\n", max(target, 1))
	b.WriteString("#EXT-X-MEDIA-SEQUENCE:1\n")
	if vod {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:VOD\n")
	} else {
		b.WriteString("#EXT-X-PLAYLIST-TYPE:EVENT\n")
	}
	b.WriteString("#EXT-X-INDEPENDENT-SEGMENTS\n")
	for i, s := range segs {
		if i == 0 || s.Run != segs[i-1].Run {
			if i > 0 {
				b.WriteString("#EXT-X-DISCONTINUITY\n")
			}
			fmt.Fprintf(&b, "#EXT-X-MAP:URI=%q\n", initName(s.Run))
		}
		fmt.Fprintf(&b, "#EXTINF:%.3f,\n%s\n", s.Duration, s.URI)
	}
	if vod {
		b.WriteString("#EXT-X-ENDLIST\n")
	}
	return []byte(b.String())
}

// streamInfo is what the multivariant playlist says of the rendition.
type streamInfo struct {
	Codecs        []string // RFC 6381 codec strings
	Width, Height int
}

// probeInit reads the codecs and picture size from an fMP4 initialization
// segment: the avc1 sample entry (width, height) and its avcC (profile,
// compatibility, level), and an mp4a sample entry (AAC-LC, which is what
// recordings encode audio to).
func probeInit(b []byte) streamInfo {
	var si streamInfo
	if i := bytes.Index(b, []byte("avc1")); i >= 0 && len(b) >= i+4+28 {
		// VisualSampleEntry: 6 reserved, 2 data_reference_index, 16
		// pre_defined/reserved, then width and height.
		si.Width = int(binary.BigEndian.Uint16(b[i+4+24:]))
		si.Height = int(binary.BigEndian.Uint16(b[i+4+26:]))
		codec := "avc1.42e01f"
		if j := bytes.Index(b[i:], []byte("avcC")); j >= 0 && len(b) >= i+j+4+4 {
			c := b[i+j+4:]
			codec = fmt.Sprintf("avc1.%02x%02x%02x", c[1], c[2], c[3])
		}
		si.Codecs = append(si.Codecs, codec)
	}
	if bytes.Contains(b, []byte("mp4a")) {
		si.Codecs = append(si.Codecs, "mp4a.40.2")
	}
	return si
}

// multivariantPlaylist renders media/hls/multivariant.m3u8: one rendition,
// "high", as IVS's participant recordings have.
func multivariantPlaylist(si streamInfo, bandwidth int64) []byte {
	var b strings.Builder
	b.WriteString("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	fmt.Fprintf(&b, "#EXT-X-STREAM-INF:BANDWIDTH=%d", max(bandwidth, 1))
	if si.Width > 0 && si.Height > 0 {
		fmt.Fprintf(&b, ",RESOLUTION=%dx%d", si.Width, si.Height)
	}
	if len(si.Codecs) > 0 {
		fmt.Fprintf(&b, ",CODECS=%q", strings.Join(si.Codecs, ","))
	}
	b.WriteString("\n" + renditionName + "/playlist.m3u8\n")
	return []byte(b.String())
}

// peakBandwidth is the highest bit rate of any segment, as EXT-X-STREAM-INF's
// BANDWIDTH wants it.
func peakBandwidth(segs []segment) int64 {
	var peak int64
	for _, s := range segs {
		if s.Duration > 0.5 {
			peak = max(peak, int64(float64(s.Bytes)*8/s.Duration))
		}
	}
	return peak
}
