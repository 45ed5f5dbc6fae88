package layout

import "math"

// Size is a picture's size in pixels.
type Size struct {
	Width, Height int
}

// Rect is a rectangle in pixels: X, Y is its top-left corner.
type Rect struct {
	X, Y, Width, Height int
}

// Empty reports whether r covers no pixel.
func (r Rect) Empty() bool { return r.Width <= 0 || r.Height <= 0 }

// Right is the first column after r.
func (r Rect) Right() int { return r.X + r.Width }

// Bottom is the first row after r.
func (r Rect) Bottom() int { return r.Y + r.Height }

// Within reports whether r lies entirely inside o.
func (r Rect) Within(o Rect) bool {
	return r.X >= o.X && r.Y >= o.Y && r.Right() <= o.Right() && r.Bottom() <= o.Bottom()
}

// Overlaps reports whether r and o share a pixel.
func (r Rect) Overlaps(o Rect) bool {
	if r.Empty() || o.Empty() {
		return false
	}
	return r.X < o.Right() && o.X < r.Right() && r.Y < o.Bottom() && o.Y < r.Bottom()
}

// Even reports whether every coordinate and size of r is even, which 4:2:0 video needs: one chroma
// sample covers 2×2 luma pixels, so a tile starting or ending on an odd pixel would smear the colour of
// its neighbour into its edge.
func (r Rect) Even() bool {
	return r.X%2 == 0 && r.Y%2 == 0 && r.Width%2 == 0 && r.Height%2 == 0
}

// evenFloor rounds n down to an even number, never below 0.
func evenFloor(n int) int {
	if n <= 0 {
		return 0
	}
	return n &^ 1
}

// evenCeil rounds n up to an even number, never below 0.
func evenCeil(n int) int {
	if n <= 0 {
		return 0
	}
	return (n + 1) &^ 1
}

// evenRound rounds f to the nearest even number, never below 0.
func evenRound(f float64) int {
	if !(f > 0) || math.IsInf(f, 0) {
		return 0
	}
	if f > math.MaxInt32 {
		return math.MaxInt32 &^ 1
	}
	return 2 * int(math.Round(f/2))
}

// fitAspect returns the largest even width and height with the aspect ratio r (width/height) that fit
// in maxW×maxH (both even). The result misses r by at most 2·max(1, r) pixels of width, the cost of
// keeping both sizes even; it is 0×0 when not even a 2×2 picture fits.
func fitAspect(maxW, maxH int, r float64) (w, h int) {
	maxW, maxH = evenFloor(maxW), evenFloor(maxH)
	if maxW < 2 || maxH < 2 || !(r > 0) || math.IsInf(r, 0) {
		return 0, 0
	}
	if float64(maxW) <= float64(maxH)*r {
		w = maxW
		h = min(max(evenRound(float64(w)/r), 2), maxH)
	} else {
		h = maxH
		w = min(max(evenRound(float64(h)*r), 2), maxW)
	}
	return w, h
}

// Fit places a source picture of size src in tile for a fill mode. It returns crop, the part of the
// source to show (in source pixels), and dest, where that part is scaled to (in output pixels, inside
// tile):
//
//   - FILL: the whole source stretched over the whole tile.
//   - COVER: the centred part of the source with the tile's aspect ratio, over the whole tile.
//   - CONTAIN: the whole source, as large as fits with its own aspect ratio, centred in the tile; the
//     rest of the tile is background (letterbox or pillarbox).
//
// dest is always even (4:2:0); crop is even wherever the source's own size allows it. When the source's
// size is not known yet (zero), crop is empty and dest is the whole tile: call Fit again once the first
// picture is decoded, and whenever the source's size changes (a simulcast layer switch does that). Fit
// is cheap enough to call per frame.
func Fit(mode string, tile Rect, src Size) (crop, dest Rect) {
	if tile.Empty() {
		return Rect{}, Rect{}
	}
	if src.Width <= 0 || src.Height <= 0 {
		return Rect{}, tile
	}
	full := Rect{0, 0, src.Width, src.Height}
	switch mode {
	case FillModeFill:
		return full, tile
	case FillModeContain:
		w, h := fitAspect(tile.Width, tile.Height, float64(src.Width)/float64(src.Height))
		if w == 0 {
			// Not even 2×2 fits; show the whole source over the whole (tiny) tile.
			return full, tile
		}
		return full, Rect{tile.X + evenFloor((tile.Width-w)/2), tile.Y + evenFloor((tile.Height-h)/2), w, h}
	default: // COVER
		ta := float64(tile.Width) / float64(tile.Height)
		if float64(src.Width) > float64(src.Height)*ta {
			// Wider than the tile: keep the full height, cut the sides.
			cw := clampCrop(evenRound(float64(src.Height)*ta), src.Width)
			return Rect{evenFloor((src.Width - cw) / 2), 0, cw, src.Height}, tile
		}
		// Taller than (or as tall as) the tile: keep the full width, cut top and bottom.
		ch := clampCrop(evenRound(float64(src.Width)/ta), src.Height)
		return Rect{0, evenFloor((src.Height - ch) / 2), src.Width, ch}, tile
	}
}

// clampCrop keeps a crop length inside the source's length n and at least 2 pixels (or n when the
// source is narrower than that).
func clampCrop(l, n int) int {
	return min(max(l, min(2, n)), n)
}
