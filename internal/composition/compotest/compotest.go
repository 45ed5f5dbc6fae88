// Package compotest has what tests of compositions share: solid colours
// that tell participants apart, pictures decoded from a composition's
// output with ffmpeg, and checks of those pictures against the layout
// package's geometry.
package compotest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/composition/layout"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
)

// RGB is a colour as ffmpeg's color source names it, and its value.
type RGB struct {
	Name    string
	R, G, B int
}

// Colours of publishers, and the background.
var (
	Red   = RGB{"red", 255, 0, 0}
	Green = RGB{"lime", 0, 255, 0}
	Blue  = RGB{"blue", 0, 0, 255}
	White = RGB{"white", 255, 255, 255}
	Black = RGB{"black", 0, 0, 0}
)

// Video is a looping source of solid-colour video of size w×h, codec
// "H264" or "VP8" (rtclient.ColourFixture, made once in the temporary
// folder).
func Video(t testing.TB, c RGB, codec string, w, h int) rtclient.MediaSource {
	t.Helper()
	path, err := rtclient.ColourFixture(context.Background(), filepath.Join(os.TempDir(), "rostrum-composition-fixtures"), c.Name, codec, w, h)
	if err != nil {
		t.Fatal(err)
	}
	src, err := rtclient.NewFileSource(path)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// PictureAt decodes the picture at second sec of the file as RGB24.
func PictureAt(t testing.TB, path string, sec float64, w, h int) []byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-ss", strconv.FormatFloat(sec, 'f', 2, 64),
		"-i", path, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1").Output()
	if err != nil {
		t.Fatalf("decoding %s at %gs: %v", path, sec, err)
	}
	if len(out) != w*h*3 {
		t.Fatalf("picture at %gs: %d bytes, want %d", sec, len(out), w*h*3)
	}
	return out
}

// Pictures decodes the file's (or playlist's) pictures, fps of them per
// second of the stream, as RGB24 of w×h.
func Pictures(t testing.TB, path string, fps float64, w, h int) [][]byte {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-i", path,
		"-vf", "fps="+strconv.FormatFloat(fps, 'f', -1, 64), "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1").Output()
	if err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	var pics [][]byte
	for n := w * h * 3; len(out) >= n; out = out[n:] {
		pics = append(pics, out[:n])
	}
	return pics
}

// InOrder says whether the pictures show each of the phases, in order
// (each phase a test of a picture); when not, it says which phase was not
// found. A composition's stream follows the wall clock only while its
// encoder keeps up, which a loaded machine's may not: tests look for what
// the picture shows, in order, not at given times.
func InOrder(pics [][]byte, phases ...func([]byte) bool) (int, bool) {
	i := 0
	for phase, ok := range phases {
		for i < len(pics) && !ok(pics[i]) {
			i++
		}
		if i == len(pics) {
			return phase, false
		}
	}
	return 0, true
}

// At is the colour of the pixel at (x, y) of a w-wide RGB24 picture.
func At(pic []byte, w, x, y int) RGB {
	i := (y*w + x) * 3
	return RGB{R: int(pic[i]), G: int(pic[i+1]), B: int(pic[i+2])}
}

// Near says whether two colours are the same to the eye, after encoding.
func Near(a, b RGB) bool {
	d := func(x, y int) bool { return x-y < 40 && y-x < 40 }
	return d(a.R, b.R) && d(a.G, b.G) && d(a.B, b.B)
}

// Centre is the middle of r.
func Centre(r layout.Rect) (int, int) { return r.X + r.Width/2, r.Y + r.Height/2 }

// TilesShow tests that every participant's tile in fr shows its colour
// at the centre and near the corners of where its video is drawn.
func TilesShow(fr layout.Frame, colours map[string]RGB) func([]byte) bool {
	return func(pic []byte) bool {
		for id, c := range colours {
			tile, ok := fr.Tile(id)
			if !ok {
				return false
			}
			d := tile.Dest
			for _, pt := range [][2]int{{d.X + d.Width/2, d.Y + d.Height/2}, {d.X + 8, d.Y + 8}, {d.Right() - 8, d.Bottom() - 8}} {
				if !Near(At(pic, fr.Size.Width, pt[0], pt[1]), c) {
					return false
				}
			}
		}
		return true
	}
}
