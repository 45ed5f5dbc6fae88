package layout

import "math"

// Role is a tile's part in the layout.
type Role int

const (
	// RoleTile is a participant in the grid (or the PiP layout's background).
	RoleTile Role = iota
	// RoleFeatured is the participant in the featured slot.
	RoleFeatured
	// RolePip is the participant in the PiP window.
	RolePip
)

func (r Role) String() string {
	switch r {
	case RoleFeatured:
		return "featured"
	case RolePip:
		return "pip"
	default:
		return "tile"
	}
}

// Tile is one participant's place in the frame.
type Tile struct {
	ParticipantID string
	Role          Role
	// Z is the stacking order: tiles with a higher Z are drawn over those with a lower one. The PiP
	// window has 1, every other tile 0.
	Z int
	// Rect is the tile in output pixels. It is empty when the output is too small to give the tile
	// 2×2 pixels; draw nothing for it then.
	Rect Rect
	// FillMode is how the participant's video fills Rect: FILL, COVER or CONTAIN.
	FillMode string
	// Video is true when the participant has video to draw; otherwise the tile is drawn as background
	// (black, or an avatar).
	Video bool
	// Crop is the part of the participant's video to show (source pixels) and Dest where it is scaled
	// to (output pixels, inside Rect); see Fit. Both are empty when the tile has no video; Crop is empty
	// and Dest is Rect when the video's size is not known yet.
	Crop, Dest Rect
}

// Frame is the composition's picture: its size and the tiles to draw on a black background, in
// painter's order (Z ascending, then participant order).
type Frame struct {
	Size  Size
	Tiles []Tile
}

// Tile returns the tile of the participant with that id.
func (f Frame) Tile(id string) (Tile, bool) {
	for _, t := range f.Tiles {
		if t.ParticipantID == id {
			return t, true
		}
	}
	return Tile{}, false
}

// Compute lays out the participants in a frame of size out. It has no side effects and is cheap
// (microseconds for a dozen participants): call it again whenever a participant joins, leaves, starts
// or stops video, or changes video size. The layout rules are in the package documentation.
func Compute(out Size, cfg Config, ps []Participant) (Frame, error) {
	if err := cfg.Validate(); err != nil {
		return Frame{}, err
	}
	f := Frame{Size: out}
	frame := Rect{0, 0, evenFloor(out.Width), evenFloor(out.Height)}
	gap := evenCeil(cfg.GridGap)

	shown := make([]Participant, 0, len(ps))
	for _, p := range ps {
		if p.Video || !cfg.OmitStoppedVideo {
			shown = append(shown, p)
		}
	}
	shown = Order(shown, cfg.ParticipantOrderAttribute)

	var pip *Participant
	if cfg.Kind == KindPip {
		if i := flagged(shown, cfg.PipParticipantAttribute); i >= 0 {
			p := shown[i]
			pip = &p
			shown = append(shown[:i:i], shown[i+1:]...)
		}
	}

	f.Tiles = make([]Tile, 0, len(ps))
	if fi := flagged(shown, cfg.FeaturedParticipantAttribute); fi >= 0 {
		others := append(shown[:fi:fi], shown[fi+1:]...)
		r := dominantAspect(others)
		if cfg.Kind == KindGrid {
			r = aspectOf(cfg.VideoAspectRatio, others)
		}
		slot, rects := featured(frame, len(others), r, gap)
		f.Tiles = append(f.Tiles, tile(shown[fi], RoleFeatured, 0, slot, cfg))
		for i, p := range others {
			f.Tiles = append(f.Tiles, tile(p, RoleTile, 0, rects[i], cfg))
		}
	} else if len(shown) > 0 {
		var rects []Rect
		if cfg.Kind == KindPip || cfg.VideoAspectRatio == AspectAuto {
			rects, _ = gridFill(frame, len(shown), dominantAspect(shown), gap)
		} else {
			rects, _ = gridFixed(frame, len(shown), aspectOf(cfg.VideoAspectRatio, shown), gap)
		}
		for i, p := range shown {
			f.Tiles = append(f.Tiles, tile(p, RoleTile, 0, rects[i], cfg))
		}
	}

	if pip != nil {
		r := frame
		if len(shown) > 0 || cfg.PipBehavior != PipDynamic {
			r = pipWindow(frame, cfg, videoAspect(*pip))
		}
		f.Tiles = append(f.Tiles, tile(*pip, RolePip, 1, r, cfg))
	}
	return f, nil
}

// tile builds a participant's tile in r, with its fill mode and source placement.
func tile(p Participant, role Role, z int, r Rect, cfg Config) Tile {
	t := Tile{ParticipantID: p.ID, Role: role, Z: z, Rect: r, FillMode: cfg.VideoFillMode, Video: p.Video}
	if t.FillMode == "" {
		t.FillMode = FillModeCover
		if cfg.Kind == KindGrid && role == RoleFeatured {
			t.FillMode = FillModeContain
		}
	}
	if p.Video {
		t.Crop, t.Dest = Fit(t.FillMode, r, p.VideoSize)
	}
	return t
}

// videoAspect is a participant's video aspect ratio, 16:9 while unknown.
func videoAspect(p Participant) float64 {
	if p.VideoSize.Width <= 0 || p.VideoSize.Height <= 0 {
		return 16.0 / 9.0
	}
	return float64(p.VideoSize.Width) / float64(p.VideoSize.Height)
}

// pipWindow is the PiP window in frame: pipWidth × pipHeight when both are set; one of them and the
// other from the PiP participant's video aspect a; neither, a window of a's shape with a sixteenth of
// the frame's area (a quarter of each side for a video of the frame's own shape), no more than half
// the frame's width or height. Sizes are rounded to even and kept inside the frame. The window sits in
// its corner pipOffset pixels (rounded up to even) from both edges, the offset shrunk when the window
// would otherwise leave the frame.
func pipWindow(frame Rect, cfg Config, a float64) Rect {
	side := func(v float64, limit int) int { return min(max(evenRound(v), 2), limit) }
	var w, h int
	switch {
	case cfg.PipWidth > 0 && cfg.PipHeight > 0:
		w, h = side(float64(cfg.PipWidth), frame.Width), side(float64(cfg.PipHeight), frame.Height)
	case cfg.PipWidth > 0:
		w = side(float64(cfg.PipWidth), frame.Width)
		h = side(float64(w)/a, frame.Height)
	case cfg.PipHeight > 0:
		h = side(float64(cfg.PipHeight), frame.Height)
		w = side(float64(h)*a, frame.Width)
	default:
		area := float64(frame.Width) * float64(frame.Height) / 16
		ih := math.Sqrt(area / a)
		w, h = fitAspect(min(evenRound(ih*a), frame.Width/2), min(evenRound(ih), frame.Height/2), a)
	}
	if frame.Width < 2 || frame.Height < 2 {
		return Rect{}
	}
	off := evenCeil(cfg.PipOffset)
	x := min(off, frame.Width-w)
	y := min(off, frame.Height-h)
	if cfg.PipPosition == PipTopRight || cfg.PipPosition == PipBottomRight {
		x = frame.Width - w - x
	}
	if cfg.PipPosition == PipBottomLeft || cfg.PipPosition == PipBottomRight {
		y = frame.Height - h - y
	}
	return Rect{frame.X + x, frame.Y + y, w, h}
}
