package layout

import (
	"errors"
	"fmt"

	"github.com/rostrum-dev/rostrum/internal/apimodel"
)

// Kind is the layout of a composition: IVS offers a grid and picture-in-picture.
type Kind int

const (
	// KindGrid is LayoutConfiguration.grid, IVS's default.
	KindGrid Kind = iota
	// KindPip is LayoutConfiguration.pip.
	KindPip
)

func (k Kind) String() string {
	if k == KindPip {
		return "pip"
	}
	return "grid"
}

// The model's enum values, under the names this package uses.
const (
	FillModeFill    = apimodel.VideoFillModeFill
	FillModeCover   = apimodel.VideoFillModeCover
	FillModeContain = apimodel.VideoFillModeContain

	AspectAuto     = apimodel.VideoAspectRatioAuto
	AspectVideo    = apimodel.VideoAspectRatioVideo
	AspectSquare   = apimodel.VideoAspectRatioSquare
	AspectPortrait = apimodel.VideoAspectRatioPortrait

	PipStatic  = apimodel.PipBehaviorStatic
	PipDynamic = apimodel.PipBehaviorDynamic

	PipTopLeft     = apimodel.PipPositionTopLeft
	PipTopRight    = apimodel.PipPositionTopRight
	PipBottomLeft  = apimodel.PipPositionBottomLeft
	PipBottomRight = apimodel.PipPositionBottomRight
)

// IVS's documented defaults.
const (
	// DefaultWidth and DefaultHeight are an EncoderConfiguration's video size when it sets none.
	DefaultWidth  = 1280
	DefaultHeight = 720
	// DefaultGridGap is GridConfiguration.gridGap's default; PipConfiguration.gridGap's is 0.
	DefaultGridGap = 2
)

// ErrInvalidLayout is returned, wrapped with the member at fault, for a layout configuration this
// package cannot lay out. The API's validation already refuses most of these; this is the last guard.
var ErrInvalidLayout = errors.New("invalid layout configuration")

// Config is a LayoutConfiguration with IVS's defaults filled in. Build it with FromModel (or by hand
// in tests: the zero value is not valid, use DefaultGrid or DefaultPip and change members).
type Config struct {
	Kind Kind

	// FeaturedParticipantAttribute names the attribute whose value "true" puts a participant in the
	// featured slot; "" means no featured slot. Both layouts.
	FeaturedParticipantAttribute string
	// ParticipantOrderAttribute names the attribute that orders participants numerically; "" means
	// arrival order only. Both layouts.
	ParticipantOrderAttribute string
	// OmitStoppedVideo leaves participants without video out of the picture. Both layouts.
	OmitStoppedVideo bool
	// GridGap is the space between tiles in pixels (grid default 2, PiP default 0). Both layouts.
	GridGap int
	// VideoFillMode is FILL, COVER or CONTAIN for every tile; "" means IVS's per-role defaults
	// (grid: COVER for tiles, CONTAIN for the featured participant; PiP: COVER).
	VideoFillMode string

	// VideoAspectRatio is the grid's tile shape: VIDEO (16:9), SQUARE, PORTRAIT (3:4) or AUTO.
	// Grid only; PiP lays its background out as AUTO does.
	VideoAspectRatio string

	// PipParticipantAttribute names the attribute whose value "true" puts a participant in the PiP
	// window; "" means no PiP window. PiP only, as are the members below.
	PipParticipantAttribute string
	// PipBehavior is STATIC or DYNAMIC: whether the PiP window fills the frame once it is alone.
	PipBehavior string
	// PipPosition is the corner of the PiP window.
	PipPosition string
	// PipWidth and PipHeight are the PiP window's size; 0 means derived from the output's size and the
	// PiP participant's video.
	PipWidth, PipHeight int
	// PipOffset is the distance in pixels from the PiP window to the edges of its corner.
	PipOffset int
}

// DefaultGrid is LayoutConfiguration.grid with every member at IVS's default.
func DefaultGrid() Config {
	return Config{Kind: KindGrid, GridGap: DefaultGridGap, VideoAspectRatio: AspectVideo}
}

// DefaultPip is LayoutConfiguration.pip with every member at IVS's default.
func DefaultPip() Config {
	return Config{Kind: KindPip, GridGap: 0, PipBehavior: PipStatic, PipPosition: PipBottomRight}
}

// FromModel resolves a StartComposition layout: nil or empty means IVS's default, a grid.
func FromModel(lc *apimodel.LayoutConfiguration) (Config, error) {
	if lc != nil && lc.Grid != nil && lc.Pip != nil {
		return Config{}, fmt.Errorf("%w: grid and pip are both set; choose one layout", ErrInvalidLayout)
	}
	if lc != nil && lc.Pip != nil {
		p := lc.Pip
		c := DefaultPip()
		c.FeaturedParticipantAttribute = deref(p.FeaturedParticipantAttribute)
		c.ParticipantOrderAttribute = deref(p.ParticipantOrderAttribute)
		c.PipParticipantAttribute = deref(p.PipParticipantAttribute)
		c.OmitStoppedVideo = p.OmitStoppedVideo != nil && *p.OmitStoppedVideo
		c.VideoFillMode = deref(p.VideoFillMode)
		if p.GridGap != nil {
			c.GridGap = int(*p.GridGap)
		}
		if p.PipBehavior != nil {
			c.PipBehavior = *p.PipBehavior
		}
		if p.PipPosition != nil {
			c.PipPosition = *p.PipPosition
		}
		if p.PipWidth != nil {
			c.PipWidth = int(*p.PipWidth)
			if c.PipWidth < 1 {
				return Config{}, fmt.Errorf("%w: pip.pipWidth %d is below 1", ErrInvalidLayout, c.PipWidth)
			}
		}
		if p.PipHeight != nil {
			c.PipHeight = int(*p.PipHeight)
			if c.PipHeight < 1 {
				return Config{}, fmt.Errorf("%w: pip.pipHeight %d is below 1", ErrInvalidLayout, c.PipHeight)
			}
		}
		if p.PipOffset != nil {
			c.PipOffset = int(*p.PipOffset)
		}
		return c, c.Validate()
	}
	c := DefaultGrid()
	if lc != nil && lc.Grid != nil {
		g := lc.Grid
		c.FeaturedParticipantAttribute = deref(g.FeaturedParticipantAttribute)
		c.ParticipantOrderAttribute = deref(g.ParticipantOrderAttribute)
		c.OmitStoppedVideo = g.OmitStoppedVideo != nil && *g.OmitStoppedVideo
		c.VideoFillMode = deref(g.VideoFillMode)
		if g.GridGap != nil {
			c.GridGap = int(*g.GridGap)
		}
		if g.VideoAspectRatio != nil {
			c.VideoAspectRatio = *g.VideoAspectRatio
		}
	}
	return c, c.Validate()
}

// Validate checks the members Compute relies on.
func (c Config) Validate() error {
	if c.Kind != KindGrid && c.Kind != KindPip {
		return fmt.Errorf("%w: unknown layout kind %d", ErrInvalidLayout, int(c.Kind))
	}
	if c.GridGap < 0 {
		return fmt.Errorf("%w: gridGap %d is negative", ErrInvalidLayout, c.GridGap)
	}
	switch c.VideoFillMode {
	case "", FillModeFill, FillModeCover, FillModeContain:
	default:
		return fmt.Errorf("%w: videoFillMode %q is not FILL, COVER or CONTAIN", ErrInvalidLayout, c.VideoFillMode)
	}
	if c.Kind == KindGrid {
		switch c.VideoAspectRatio {
		case AspectAuto, AspectVideo, AspectSquare, AspectPortrait:
		default:
			return fmt.Errorf("%w: videoAspectRatio %q is not AUTO, VIDEO, SQUARE or PORTRAIT", ErrInvalidLayout, c.VideoAspectRatio)
		}
		return nil
	}
	switch c.PipBehavior {
	case PipStatic, PipDynamic:
	default:
		return fmt.Errorf("%w: pipBehavior %q is not STATIC or DYNAMIC", ErrInvalidLayout, c.PipBehavior)
	}
	switch c.PipPosition {
	case PipTopLeft, PipTopRight, PipBottomLeft, PipBottomRight:
	default:
		return fmt.Errorf("%w: pipPosition %q is not a corner", ErrInvalidLayout, c.PipPosition)
	}
	if c.PipWidth < 0 || c.PipHeight < 0 || c.PipOffset < 0 {
		return fmt.Errorf("%w: pipWidth, pipHeight and pipOffset cannot be negative", ErrInvalidLayout)
	}
	return nil
}

// OutputSize is the composition's picture size for an EncoderConfiguration's video settings: the
// members it sets, IVS's defaults (1280×720) for the others.
func OutputSize(v *apimodel.Video) Size {
	s := Size{DefaultWidth, DefaultHeight}
	if v != nil && v.Width != nil {
		s.Width = int(*v.Width)
	}
	if v != nil && v.Height != nil {
		s.Height = int(*v.Height)
	}
	return s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
