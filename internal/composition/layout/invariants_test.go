package layout

import (
	"fmt"
	"math"
	"testing"
)

// checkFrame asserts every rule a frame must keep, whatever the participants, sizes and configuration:
// the table tests and the fuzz target run it on each frame they compute. It returns the problems found,
// so that callers can report them with the case that caused them.
func checkFrame(out Size, cfg Config, ps []Participant, f Frame) []string {
	var bad []string
	fail := func(format string, args ...any) { bad = append(bad, fmt.Sprintf(format, args...)) }
	frame := Rect{0, 0, max(out.Width, 0), max(out.Height, 0)}
	byID := map[string]Participant{}
	for _, p := range ps {
		byID[p.ID] = p
	}

	// Who is in the picture: everyone, less stopped video when asked, each once.
	want := 0
	for _, p := range ps {
		if p.Video || !cfg.OmitStoppedVideo {
			want++
		}
	}
	if len(f.Tiles) != want {
		fail("%d tiles for %d participants to show", len(f.Tiles), want)
	}
	seen := map[string]bool{}
	for _, t := range f.Tiles {
		if seen[t.ParticipantID] {
			fail("participant %s has two tiles", t.ParticipantID)
		}
		seen[t.ParticipantID] = true
		p, ok := byID[t.ParticipantID]
		if !ok {
			fail("tile for unknown participant %q", t.ParticipantID)
			continue
		}
		if cfg.OmitStoppedVideo && !p.Video {
			fail("participant %s without video is shown although omitStoppedVideo", p.ID)
		}
	}

	// Painter's order: Z never decreases; the PiP window alone is on top.
	for i, t := range f.Tiles {
		if i > 0 && t.Z < f.Tiles[i-1].Z {
			fail("tile %d (Z %d) after a tile with Z %d", i, t.Z, f.Tiles[i-1].Z)
		}
		if (t.Role == RolePip) != (t.Z == 1) {
			fail("tile %s: role %v with Z %d", t.ParticipantID, t.Role, t.Z)
		}
	}

	for _, t := range f.Tiles {
		p := byID[t.ParticipantID]
		if t.Rect.Empty() {
			if !t.Crop.Empty() || !t.Dest.Empty() {
				fail("tile %s: empty but has crop %v dest %v", t.ParticipantID, t.Crop, t.Dest)
			}
			continue
		}
		if !t.Rect.Within(frame) {
			fail("tile %s %v outside the frame %v", t.ParticipantID, t.Rect, frame)
		}
		if !t.Rect.Even() {
			fail("tile %s %v not even", t.ParticipantID, t.Rect)
		}
		if t.Video != p.Video {
			fail("tile %s: Video %v, participant %v", t.ParticipantID, t.Video, p.Video)
		}
		wantMode := cfg.VideoFillMode
		if wantMode == "" {
			wantMode = FillModeCover
			if cfg.Kind == KindGrid && t.Role == RoleFeatured {
				wantMode = FillModeContain
			}
		}
		if t.FillMode != wantMode {
			fail("tile %s (%v): fill mode %s, want %s", t.ParticipantID, t.Role, t.FillMode, wantMode)
		}
		bad = append(bad, checkFit(t, p)...)
	}

	// The grid (everything under the PiP window): no overlap, gaps respected.
	for i, a := range f.Tiles {
		for _, b := range f.Tiles[i+1:] {
			if a.Z != 0 || b.Z != 0 || a.Rect.Empty() || b.Rect.Empty() {
				continue
			}
			if a.Rect.Overlaps(b.Rect) {
				fail("tiles %s %v and %s %v overlap", a.ParticipantID, a.Rect, b.ParticipantID, b.Rect)
				continue
			}
			sep := max(b.Rect.X-a.Rect.Right(), a.Rect.X-b.Rect.Right(), b.Rect.Y-a.Rect.Bottom(), a.Rect.Y-b.Rect.Bottom())
			if sep < cfg.GridGap {
				fail("tiles %s %v and %s %v are %d px apart, gridGap %d", a.ParticipantID, a.Rect, b.ParticipantID, b.Rect, sep, cfg.GridGap)
			}
		}
	}

	// Grid tiles: one size, in reading order, the asked shape.
	var grid []Tile
	var feat *Tile
	for i, t := range f.Tiles {
		switch t.Role {
		case RoleTile:
			grid = append(grid, t)
		case RoleFeatured:
			if feat != nil {
				fail("two featured tiles")
			}
			feat = &f.Tiles[i]
		}
	}
	for i := 1; i < len(grid); i++ {
		a, b := grid[i-1].Rect, grid[i].Rect
		if a.Empty() || b.Empty() {
			continue
		}
		if a.Width != b.Width || a.Height != b.Height {
			fail("grid tiles of different sizes: %v and %v", a, b)
		}
		if !(a.Y < b.Y || (a.Y == b.Y && a.X < b.X)) {
			fail("grid tiles out of reading order: %v then %v", a, b)
		}
	}
	fixed := cfg.Kind == KindGrid && cfg.VideoAspectRatio != AspectAuto
	if fixed || feat != nil {
		// Tiles of a fixed shape: the strip under a featured participant, or a grid not AUTO.
		others := []Participant{}
		for _, t := range grid {
			others = append(others, byID[t.ParticipantID])
		}
		r := dominantAspect(others)
		if cfg.Kind == KindGrid {
			r = aspectOf(cfg.VideoAspectRatio, others)
		}
		for _, t := range grid {
			if !t.Rect.Empty() && math.Abs(float64(t.Rect.Width)-float64(t.Rect.Height)*r) > 2*max(1, r)+1e-9 {
				fail("tile %s %v is not of aspect %.3f", t.ParticipantID, t.Rect, r)
			}
		}
	} else if len(grid) > 0 && !grid[0].Rect.Empty() {
		// AUTO and the PiP background fill the frame: the tiles' bounding box reaches every edge but
		// for the even rounding of each cell.
		bb := grid[0].Rect
		for _, t := range grid[1:] {
			bb = union(bb, t.Rect)
		}
		slack := 2 * len(grid)
		if bb.Width < evenFloor(frame.Width)-slack || bb.Height < evenFloor(frame.Height)-slack {
			fail("filling grid covers %v of frame %v", bb, frame)
		}
	}

	// The featured participant: the first flagged (after the PiP participant is taken out), full width
	// above the strip.
	if cfg.FeaturedParticipantAttribute != "" {
		var order []Participant
		for _, p := range Order(ps, cfg.ParticipantOrderAttribute) {
			if cfg.OmitStoppedVideo && !p.Video {
				continue
			}
			if pipT, ok := f.Tile(p.ID); ok && pipT.Role == RolePip {
				continue
			}
			order = append(order, p)
		}
		i := flagged(order, cfg.FeaturedParticipantAttribute)
		switch {
		case i < 0 && feat != nil:
			fail("featured tile %s but nobody is flagged", feat.ParticipantID)
		case i >= 0 && feat == nil:
			fail("participant %s is flagged featured but has no featured tile", order[i].ID)
		case i >= 0 && feat.ParticipantID != order[i].ID:
			fail("featured tile is %s, want %s (first flagged in order)", feat.ParticipantID, order[i].ID)
		}
	} else if feat != nil {
		fail("featured tile without featuredParticipantAttribute")
	}
	if feat != nil && !feat.Rect.Empty() {
		if feat.Rect.Width != evenFloor(frame.Width) {
			fail("featured slot %v is not full width", feat.Rect)
		}
		for _, t := range grid {
			if !t.Rect.Empty() && t.Rect.Y < feat.Rect.Bottom() {
				fail("tile %v is not below the featured slot %v", t.Rect, feat.Rect)
			}
		}
	}

	// The PiP window: in its corner, pipOffset from the edges (or less when the window would leave the
	// frame), the whole frame when DYNAMIC and alone.
	for _, t := range f.Tiles {
		if t.Role != RolePip {
			continue
		}
		if cfg.Kind != KindPip {
			fail("PiP tile in a grid layout")
		}
		fw, fh := evenFloor(frame.Width), evenFloor(frame.Height)
		if len(f.Tiles) == 1 && cfg.PipBehavior == PipDynamic {
			if t.Rect != (Rect{0, 0, fw, fh}) && !(fw < 2 || fh < 2) {
				fail("DYNAMIC PiP alone is %v, want the frame", t.Rect)
			}
			continue
		}
		if t.Rect.Empty() {
			continue
		}
		off := evenCeil(cfg.PipOffset)
		dx, dy := t.Rect.X, t.Rect.Y
		if cfg.PipPosition == PipTopRight || cfg.PipPosition == PipBottomRight {
			dx = fw - t.Rect.Right()
		}
		if cfg.PipPosition == PipBottomLeft || cfg.PipPosition == PipBottomRight {
			dy = fh - t.Rect.Bottom()
		}
		if dx != min(off, fw-t.Rect.Width) || dy != min(off, fh-t.Rect.Height) {
			fail("PiP window %v at %s is %d,%d from its edges, offset %d, frame %dx%d", t.Rect, cfg.PipPosition, dx, dy, cfg.PipOffset, fw, fh)
		}
		if cfg.PipWidth > 0 && t.Rect.Width != min(evenRound(float64(cfg.PipWidth)), fw) && t.Rect.Width != min(2, fw) {
			fail("PiP window %v, pipWidth %d", t.Rect, cfg.PipWidth)
		}
		if cfg.PipHeight > 0 && t.Rect.Height != min(evenRound(float64(cfg.PipHeight)), fh) && t.Rect.Height != min(2, fh) {
			fail("PiP window %v, pipHeight %d", t.Rect, cfg.PipHeight)
		}
	}
	return bad
}

// checkFit asserts the crop and destination of a tile for its fill mode.
func checkFit(t Tile, p Participant) []string {
	var bad []string
	fail := func(format string, args ...any) {
		bad = append(bad, fmt.Sprintf("tile %s %s %v src %v: ", t.ParticipantID, t.FillMode, t.Rect, p.VideoSize)+fmt.Sprintf(format, args...))
	}
	src := p.VideoSize
	if !t.Video {
		if !t.Crop.Empty() || !t.Dest.Empty() {
			fail("no video, yet crop %v dest %v", t.Crop, t.Dest)
		}
		return bad
	}
	if src.Width <= 0 || src.Height <= 0 {
		if !t.Crop.Empty() || t.Dest != t.Rect {
			fail("unknown size: crop %v dest %v, want empty and the tile", t.Crop, t.Dest)
		}
		return bad
	}
	full := Rect{0, 0, src.Width, src.Height}
	if t.Crop.Empty() || !t.Crop.Within(full) {
		fail("crop %v not inside the source", t.Crop)
	}
	if src.Width%2 == 0 && src.Height%2 == 0 && !t.Crop.Even() {
		fail("crop %v of an even source is not even", t.Crop)
	}
	if t.Dest.Empty() || !t.Dest.Within(t.Rect) || !t.Dest.Even() {
		fail("dest %v not an even rectangle inside the tile", t.Dest)
	}
	switch t.FillMode {
	case FillModeFill:
		if t.Crop != full || t.Dest != t.Rect {
			fail("FILL: crop %v dest %v, want the whole source over the whole tile", t.Crop, t.Dest)
		}
	case FillModeCover:
		if t.Dest != t.Rect {
			fail("COVER: dest %v does not fill the tile", t.Dest)
		}
		if t.Crop.Width != src.Width && t.Crop.Height != src.Height {
			fail("COVER: crop %v cuts both sides", t.Crop)
		}
		// The crop has the tile's shape, within a pixel of rounding on each side.
		ta := float64(t.Rect.Width) / float64(t.Rect.Height)
		if d := math.Abs(float64(t.Crop.Width) - float64(t.Crop.Height)*ta); d > 1+ta && t.Crop.Width > 2 && t.Crop.Height > 2 {
			fail("COVER: crop %v is not of the tile's aspect %.3f (off by %.1f px)", t.Crop, ta, d)
		}
		centred(fail, t.Crop, full)
	case FillModeContain:
		if t.Crop != full {
			fail("CONTAIN: crop %v, want the whole source", t.Crop)
		}
		if t.Dest.Width != t.Rect.Width && t.Dest.Height != t.Rect.Height && t.Rect.Width >= 2 && t.Rect.Height >= 2 {
			fail("CONTAIN: dest %v touches neither pair of the tile's sides", t.Dest)
		}
		a := float64(src.Width) / float64(src.Height)
		if d := math.Abs(float64(t.Dest.Width) - float64(t.Dest.Height)*a); d > 2*max(1, a) && t.Dest.Width > 2 && t.Dest.Height > 2 {
			fail("CONTAIN: dest %v is not of the source's aspect %.3f", t.Dest, a)
		}
		centred(fail, t.Dest, t.Rect)
	}
	return bad
}

// centred asserts that inner sits in the middle of outer, within the 2 px that even coordinates cost.
func centred(fail func(string, ...any), inner, outer Rect) {
	l, r := inner.X-outer.X, outer.Right()-inner.Right()
	tp, b := inner.Y-outer.Y, outer.Bottom()-inner.Bottom()
	if l < 0 || r < 0 || tp < 0 || b < 0 || r-l > 3 || l-r > 3 || b-tp > 3 || tp-b > 3 {
		fail("%v is not centred in %v", inner, outer)
	}
}

func union(a, b Rect) Rect {
	x, y := min(a.X, b.X), min(a.Y, b.Y)
	return Rect{x, y, max(a.Right(), b.Right()) - x, max(a.Bottom(), b.Bottom()) - y}
}

// assertFrame runs checkFrame and fails t with the case's description.
func assertFrame(t *testing.T, name string, out Size, cfg Config, ps []Participant, f Frame) {
	t.Helper()
	for _, b := range checkFrame(out, cfg, ps, f) {
		t.Errorf("%s: %s", name, b)
	}
}
