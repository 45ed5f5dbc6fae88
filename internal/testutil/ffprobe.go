package testutil

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"testing"
)

// Probe is what ffprobe says of a media file or playlist.
type Probe struct {
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
		StartTime string `json:"start_time"`
		FrameRate string `json:"avg_frame_rate"` // "30/1"
	} `json:"streams"`
}

// FFprobe runs ffprobe on path, failing the test if it cannot read it.
func FFprobe(t testing.TB, path string) Probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p Probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// Duration is the container's duration in seconds (0 if unknown).
func (p Probe) Duration() float64 {
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return d
}

// Stream returns the codec and picture size of the first stream of kind
// ("video", "audio"), or "" if there is none.
func (p Probe) Stream(kind string) (codec string, width, height int) {
	for _, s := range p.Streams {
		if s.CodecType == kind {
			return s.CodecName, s.Width, s.Height
		}
	}
	return "", 0, 0
}

// FrameRate is the average frame rate of the first stream of kind, in
// frames per second (0 if unknown).
func (p Probe) FrameRate(kind string) float64 {
	for _, s := range p.Streams {
		if s.CodecType == kind {
			var n, d float64
			if _, err := fmt.Sscanf(s.FrameRate, "%g/%g", &n, &d); err != nil || d == 0 {
				return 0
			}
			return n / d
		}
	}
	return 0
}
