package layout

import (
	"strconv"
	"testing"
)

// FuzzCompute lays out random stages in random frames with random configurations and checks the same
// invariants as the table tests: no panic, every tile even and inside the frame, no overlap, gaps kept,
// crops inside their source. Run it with: go test ./internal/composition/layout -fuzz FuzzCompute
func FuzzCompute(f *testing.F) {
	f.Add(uint16(1280), uint16(720), []byte{4, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add(uint16(1920), uint16(1080), []byte{12, 1, 0, 3, 2, 1, 1, 44, 200, 9, 7, 255, 0, 128, 3, 3, 3})
	f.Add(uint16(641), uint16(359), []byte{7, 5, 9, 2, 3, 0, 1, 0, 0, 60, 1, 2, 1, 2, 1, 2})
	f.Add(uint16(2), uint16(2), []byte{40, 3, 255, 255, 255, 255, 255, 255, 255, 255})
	f.Add(uint16(720), uint16(1280), []byte{3, 2, 1, 1, 3, 1, 0, 0, 0, 0, 9, 9, 9, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, w, h uint16, data []byte) {
		b := bytes(data)
		out := Size{int(w % 4000), int(h % 4000)}
		n := int(b.next() % 41)
		flags := b.next()

		var cfg Config
		if flags&1 == 0 {
			cfg = DefaultGrid()
			cfg.VideoAspectRatio = []string{AspectVideo, AspectSquare, AspectPortrait, AspectAuto}[b.next()%4]
		} else {
			cfg = DefaultPip()
			cfg.PipPosition = []string{PipTopLeft, PipTopRight, PipBottomLeft, PipBottomRight}[b.next()%4]
			cfg.PipBehavior = []string{PipStatic, PipDynamic}[b.next()%2]
			cfg.PipWidth = b.size()
			cfg.PipHeight = b.size()
			cfg.PipOffset = b.size()
			cfg.PipParticipantAttribute = []string{"", "pip"}[b.next()%2]
		}
		cfg.VideoFillMode = []string{"", FillModeFill, FillModeCover, FillModeContain}[b.next()%4]
		cfg.GridGap = b.size()
		cfg.OmitStoppedVideo = flags&2 != 0
		if flags&4 != 0 {
			cfg.FeaturedParticipantAttribute = "f"
		}
		if flags&8 != 0 {
			cfg.ParticipantOrderAttribute = "o"
		}

		ps := make([]Participant, n)
		for i := range ps {
			v := b.next()
			ps[i] = Participant{
				ID:      "p" + strconv.Itoa(i),
				Video:   v&1 != 0,
				Arrival: int64(b.next() % 8), // collisions on purpose: ID breaks ties
				Attributes: map[string]string{
					"f":   strconv.FormatBool(v&2 != 0),
					"pip": strconv.FormatBool(v&4 != 0),
					"o":   []string{"", "1", "2", "-3", "x", "1.5", "NaN", "1e400"}[(v>>3)%8],
				},
			}
			if ps[i].Video && v&64 != 0 {
				ps[i].VideoSize = Size{b.size() % 4000, b.size() % 4000}
			}
		}
		fr, err := Compute(out, cfg, ps)
		if err != nil {
			t.Fatalf("Compute: %v", err)
		}
		for _, problem := range checkFrame(out, cfg, ps, fr) {
			t.Errorf("%v %+v: %s", out, cfg, problem)
		}
	})
}

// bytes reads fuzz input; past its end it reads zeros.
type bytes []byte

func (b *bytes) next() byte {
	if len(*b) == 0 {
		return 0
	}
	v := (*b)[0]
	*b = (*b)[1:]
	return v
}

// size reads a length: mostly small, sometimes very large.
func (b *bytes) size() int {
	v := int(b.next())
	if v >= 250 {
		return v * 100000
	}
	return v * int(b.next()%16+1)
}
