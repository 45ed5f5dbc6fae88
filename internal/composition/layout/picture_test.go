package layout

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// The pictures in docs/layouts show what Compute does. This test draws them and compares them, pixel
// by pixel, with the files in the repository, so that a change of geometry cannot land without new
// pictures. After a deliberate change, redraw them with:
//
//	go test ./internal/composition/layout -run TestLayoutPictures -update
var update = flag.Bool("update", false, "rewrite docs/layouts/*.png")

const picturesDir = "../../../docs/layouts"

type picture struct {
	name string
	out  Size
	cfg  Config
	ps   []Participant
}

func pictures() []picture {
	hd := Size{1280, 720}
	grid := func(mod func(*Config)) Config { c := DefaultGrid(); mod(&c); return c }
	pip := func(mod func(*Config)) Config { c := DefaultPip(); mod(&c); return c }
	landscape, phone, sd := Size{1280, 720}, Size{720, 1280}, Size{640, 480}
	mixed := func(n int) []Participant {
		ps := people(n, landscape, nil)
		for i := range ps {
			ps[i].VideoSize = []Size{landscape, phone, sd, landscape}[i%4]
		}
		return ps
	}
	flag := func(ps []Participant, attr string, idx ...int) []Participant {
		for _, i := range idx {
			if ps[i].Attributes == nil {
				ps[i].Attributes = map[string]string{}
			}
			ps[i].Attributes[attr] = "true"
		}
		return ps
	}
	stopped := func(ps []Participant, i int) []Participant { ps[i].Video = false; return ps }
	return []picture{
		{"grid-2", hd, DefaultGrid(), mixed(2)},
		{"grid-5", hd, DefaultGrid(), stopped(mixed(5), 3)},
		{"grid-12", hd, DefaultGrid(), mixed(12)},
		{"grid-square-4", hd, grid(func(c *Config) { c.VideoAspectRatio = AspectSquare }), mixed(4)},
		{"grid-portrait-3", hd, grid(func(c *Config) { c.VideoAspectRatio = AspectPortrait }), mixed(3)},
		{"grid-auto-3", hd, grid(func(c *Config) { c.VideoAspectRatio = AspectAuto }), mixed(3)},
		{"grid-featured-5", hd, grid(func(c *Config) { c.FeaturedParticipantAttribute = "host" }), flag(mixed(5), "host", 1)},
		{"grid-vertical-6", Size{720, 1280}, DefaultGrid(), mixed(6)},
		{"fill-FILL", Size{640, 360}, grid(func(c *Config) { c.VideoFillMode = FillModeFill }), people(1, phone, nil)},
		{"fill-COVER", Size{640, 360}, grid(func(c *Config) { c.VideoFillMode = FillModeCover }), people(1, phone, nil)},
		{"fill-CONTAIN", Size{640, 360}, grid(func(c *Config) { c.VideoFillMode = FillModeContain }), people(1, phone, nil)},
		{"pip", hd, pip(func(c *Config) { c.PipParticipantAttribute = "pip" }), flag(people(2, landscape, nil), "pip", 1)},
		{"pip-3-top-left-offset", hd, pip(func(c *Config) {
			c.PipParticipantAttribute, c.PipPosition, c.PipOffset, c.GridGap = "pip", PipTopLeft, 24, 2
		}), flag(mixed(4), "pip", 3)},
		{"pip-featured", hd, pip(func(c *Config) { c.PipParticipantAttribute, c.FeaturedParticipantAttribute = "pip", "host" }),
			flag(flag(people(4, landscape, nil), "pip", 0), "host", 2)},
		{"pip-dynamic-alone", hd, pip(func(c *Config) { c.PipParticipantAttribute, c.PipBehavior = "pip", PipDynamic }), flag(people(1, landscape, nil), "pip", 0)},
		{"pip-static-alone", hd, pip(func(c *Config) { c.PipParticipantAttribute = "pip" }), flag(people(1, landscape, nil), "pip", 0)},
	}
}

func TestLayoutPictures(t *testing.T) {
	if *update {
		if err := os.MkdirAll(picturesDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pictures() {
		t.Run(p.name, func(t *testing.T) {
			f, err := Compute(p.out, p.cfg, p.ps)
			if err != nil {
				t.Fatal(err)
			}
			assertFrame(t, p.name, p.out, p.cfg, p.ps, f)
			img := render(f, p.ps)
			path := filepath.Join(picturesDir, p.name+".png")
			if *update {
				w, err := os.Create(path)
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				if err := png.Encode(w, img); err != nil {
					t.Fatal(err)
				}
				return
			}
			r, err := os.Open(path)
			if err != nil {
				t.Fatalf("%v (draw the pictures with -update)", err)
			}
			defer r.Close()
			old, err := png.Decode(r)
			if err != nil {
				t.Fatal(err)
			}
			if d := differs(old, img); d != "" {
				t.Errorf("%s no longer shows what Compute does: %s (redraw with -update after checking the change)", path, d)
			}
		})
	}
}

func differs(a, b image.Image) string {
	if a.Bounds() != b.Bounds() {
		return fmt.Sprintf("size %v, now %v", a.Bounds(), b.Bounds())
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return fmt.Sprintf("pixel %d,%d differs", x, y)
			}
		}
	}
	return ""
}

// render draws a frame the way a compositor would: black background, each tile's background, then
// each participant's (synthetic) video cropped and scaled per the tile, in painter's order.
func render(f Frame, ps []Participant) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, f.Size.Width, f.Size.Height))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.Black), image.Point{}, draw.Src)
	index := map[string]int{}
	byID := map[string]Participant{}
	for i, p := range ps {
		index[p.ID], byID[p.ID] = i, p
	}
	for _, t := range f.Tiles {
		if t.Rect.Empty() {
			continue
		}
		draw.Draw(img, rect(t.Rect), image.NewUniform(color.RGBA{40, 40, 48, 255}), image.Point{}, draw.Src)
		i := index[t.ParticipantID]
		if !t.Video {
			// No video: the participant's number on the tile's background, as an avatar would be.
			digits(img, t.Rect, i+1, color.RGBA{110, 110, 120, 255})
			continue
		}
		src := synthetic(byID[t.ParticipantID].VideoSize, i)
		scale(img, t.Dest, src, t.Crop)
	}
	return img
}

var palette = []color.RGBA{
	{230, 60, 60, 255}, {60, 170, 80, 255}, {60, 110, 220, 255}, {230, 170, 40, 255},
	{160, 70, 200, 255}, {40, 180, 190, 255}, {230, 110, 170, 255}, {130, 150, 60, 255},
	{200, 100, 50, 255}, {90, 90, 200, 255}, {60, 140, 120, 255}, {180, 60, 110, 255},
}

// synthetic is a participant's picture: its colour, a pale frame along the edges (so crops show), a
// white circle in the middle (so stretching shows) and its number.
func synthetic(s Size, i int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, s.Width, s.Height))
	c := palette[i%len(palette)]
	draw.Draw(img, img.Bounds(), image.NewUniform(c), image.Point{}, draw.Src)
	edge := max(min(s.Width, s.Height)/20, 1)
	pale := color.RGBA{c.R/2 + 120, c.G/2 + 120, c.B/2 + 120, 255}
	for y := 0; y < s.Height; y++ {
		for x := 0; x < s.Width; x++ {
			if x < edge || y < edge || x >= s.Width-edge || y >= s.Height-edge {
				img.SetRGBA(x, y, pale)
			}
		}
	}
	cx, cy, r := s.Width/2, s.Height/2, min(s.Width, s.Height)*3/10
	for y := cy - r; y <= cy+r; y++ {
		for x := cx - r; x <= cx+r; x++ {
			if (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r {
				img.SetRGBA(x, y, color.RGBA{245, 245, 245, 255})
			}
		}
	}
	digits(img, Rect{cx - r, cy - r, 2 * r, 2 * r}, i+1, c)
	return img
}

// scale copies crop of src onto dest of dst, nearest neighbour.
func scale(dst *image.RGBA, dest Rect, src *image.RGBA, crop Rect) {
	if dest.Empty() || crop.Empty() {
		return
	}
	for y := 0; y < dest.Height; y++ {
		sy := crop.Y + y*crop.Height/dest.Height
		for x := 0; x < dest.Width; x++ {
			sx := crop.X + x*crop.Width/dest.Width
			dst.SetRGBA(dest.X+x, dest.Y+y, src.RGBAAt(sx, sy))
		}
	}
}

// font is a 3×5 bitmap of the digits.
var font = [10][5]string{
	{"###", "#.#", "#.#", "#.#", "###"}, {".#.", "##.", ".#.", ".#.", "###"},
	{"###", "..#", "###", "#..", "###"}, {"###", "..#", "###", "..#", "###"},
	{"#.#", "#.#", "###", "..#", "..#"}, {"###", "#..", "###", "..#", "###"},
	{"###", "#..", "###", "#.#", "###"}, {"###", "..#", "..#", "..#", "..#"},
	{"###", "#.#", "###", "#.#", "###"}, {"###", "#.#", "###", "..#", "###"},
}

// digits writes n in the middle of box, as large as fits in half of it.
func digits(img *image.RGBA, box Rect, n int, c color.RGBA) {
	s := strconv.Itoa(n)
	cols := 4*len(s) - 1
	px := max(min(box.Width/2/cols, box.Height/2/5), 1)
	x0 := box.X + (box.Width-cols*px)/2
	y0 := box.Y + (box.Height-5*px)/2
	for k, ch := range s {
		g := font[ch-'0']
		for row := 0; row < 5; row++ {
			for col := 0; col < 3; col++ {
				if g[row][col] != '#' {
					continue
				}
				r := image.Rect(x0+(4*k+col)*px, y0+row*px, x0+(4*k+col+1)*px, y0+(row+1)*px)
				draw.Draw(img, r.Intersect(img.Bounds()), image.NewUniform(c), image.Point{}, draw.Src)
			}
		}
	}
}

func rect(r Rect) image.Rectangle { return image.Rect(r.X, r.Y, r.Right(), r.Bottom()) }
