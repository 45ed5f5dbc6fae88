package ffmpeg

import (
	"bufio"
	"bytes"
	"math"
	"strconv"
	"strings"
)

// Segment is one media segment that ffmpeg's HLS muxer lists.
type Segment struct {
	URI      string  // the file's name, in the playlist's folder
	Duration float64 // seconds
}

// ReadPlaylist returns the segments ffmpeg's media playlist lists: ffmpeg
// adds a segment only once its file is complete, so these can be uploaded.
// ended reports an EXT-X-ENDLIST (ffmpeg finished). A playlist read while
// ffmpeg rewrites it may end mid-line: only whole lines count. Names with
// a path (that would leave the folder) are not segments.
func ReadPlaylist(b []byte) (segs []Segment, ended bool) {
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
				segs = append(segs, Segment{URI: line, Duration: dur})
			}
			dur = -1
		}
	}
	return segs, ended
}
