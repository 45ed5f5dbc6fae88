package layout

import (
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/apimodel"
)

// people makes n participants arriving in order p1, p2, …, with video of size src (none when src is
// zero) and attrs(i) as attributes.
func people(n int, src Size, attrs func(i int) map[string]string) []Participant {
	ps := make([]Participant, n)
	for i := range ps {
		ps[i] = Participant{ID: "p" + strconv.Itoa(i+1), Video: src != (Size{}), VideoSize: src, Arrival: int64(i)}
		if attrs != nil {
			ps[i].Attributes = attrs(i)
		}
	}
	return ps
}

func compute(t *testing.T, out Size, cfg Config, ps []Participant) Frame {
	t.Helper()
	f, err := Compute(out, cfg, ps)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	assertFrame(t, "", out, cfg, ps, f)
	return f
}

func rects(f Frame) []Rect {
	var rs []Rect
	for _, t := range f.Tiles {
		rs = append(rs, t.Rect)
	}
	return rs
}

func sameRects(t *testing.T, got []Rect, want ...Rect) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tiles\n got %v\nwant %v", got, want)
	}
}

var hd = Size{1280, 720}

// The exact arithmetic of the documented cases at IVS's default size, worked out by hand in the
// package documentation.
func TestGridDefaultsAt720p(t *testing.T) {
	src := Size{1280, 720}
	t.Run("one participant fills the frame", func(t *testing.T) {
		f := compute(t, hd, DefaultGrid(), people(1, src, nil))
		sameRects(t, rects(f), Rect{0, 0, 1280, 720})
	})
	t.Run("two side by side, gap 2", func(t *testing.T) {
		f := compute(t, hd, DefaultGrid(), people(2, src, nil))
		sameRects(t, rects(f), Rect{0, 180, 638, 358}, Rect{640, 180, 638, 358})
	})
	t.Run("four in two rows", func(t *testing.T) {
		f := compute(t, hd, DefaultGrid(), people(4, src, nil))
		sameRects(t, rects(f), Rect{2, 0, 636, 358}, Rect{640, 0, 636, 358}, Rect{2, 360, 636, 358}, Rect{640, 360, 636, 358})
	})
	t.Run("five: three over two, last row centred", func(t *testing.T) {
		f := compute(t, hd, DefaultGrid(), people(5, src, nil))
		sameRects(t, rects(f),
			Rect{2, 120, 424, 238}, Rect{428, 120, 424, 238}, Rect{854, 120, 424, 238},
			Rect{214, 360, 424, 238}, Rect{640, 360, 424, 238})
	})
	t.Run("twelve: four by three", func(t *testing.T) {
		f := compute(t, hd, DefaultGrid(), people(12, src, nil))
		for i, tl := range f.Tiles {
			want := Rect{(i % 4) * 320, 90 + (i/4)*180, 318, 178}
			if tl.Rect != want {
				t.Errorf("tile %d: %v, want %v", i, tl.Rect, want)
			}
		}
	})
	t.Run("squares", func(t *testing.T) {
		cfg := DefaultGrid()
		cfg.VideoAspectRatio = AspectSquare
		f := compute(t, hd, cfg, people(2, src, nil))
		sameRects(t, rects(f), Rect{0, 40, 638, 638}, Rect{640, 40, 638, 638})
	})
	t.Run("portrait", func(t *testing.T) {
		cfg := DefaultGrid()
		cfg.VideoAspectRatio = AspectPortrait
		f := compute(t, hd, cfg, people(1, src, nil))
		sameRects(t, rects(f), Rect{370, 0, 540, 720})
	})
	t.Run("AUTO fills the frame", func(t *testing.T) {
		cfg := DefaultGrid()
		cfg.VideoAspectRatio = AspectAuto
		f := compute(t, hd, cfg, people(3, src, nil))
		sameRects(t, rects(f), Rect{0, 0, 638, 358}, Rect{640, 0, 638, 358}, Rect{320, 360, 638, 358})
	})
	t.Run("gap 0 and an odd gap rounded up to even", func(t *testing.T) {
		cfg := DefaultGrid()
		cfg.GridGap = 0
		f := compute(t, hd, cfg, people(4, src, nil))
		sameRects(t, rects(f), Rect{0, 0, 640, 360}, Rect{640, 0, 640, 360}, Rect{0, 360, 640, 360}, Rect{640, 360, 640, 360})
		cfg.GridGap = 3
		f = compute(t, hd, cfg, people(2, src, nil))
		sameRects(t, rects(f), Rect{0, 180, 638, 358}, Rect{642, 180, 638, 358})
	})
}

func TestFeaturedParticipantGetsTheBigSlotOthersBelow(t *testing.T) {
	cfg := DefaultGrid()
	cfg.FeaturedParticipantAttribute = "featured"
	ps := people(4, Size{1280, 720}, func(i int) map[string]string {
		if i == 2 {
			return map[string]string{"featured": "true"}
		}
		return nil
	})
	f := compute(t, hd, cfg, ps)
	ft, _ := f.Tile("p3")
	if ft.Role != RoleFeatured || ft.Rect != (Rect{0, 0, 1280, 538}) || ft.FillMode != FillModeContain {
		t.Errorf("featured tile %+v", ft)
	}
	// CONTAIN: 16:9 in 1280×538 is pillarboxed.
	if ft.Dest != (Rect{162, 0, 956, 538}) || ft.Crop != (Rect{0, 0, 1280, 720}) {
		t.Errorf("featured placement dest %v crop %v", ft.Dest, ft.Crop)
	}
	var strip []Rect
	for _, id := range []string{"p1", "p2", "p4"} {
		tl, _ := f.Tile(id)
		if tl.Role != RoleTile || tl.FillMode != FillModeCover {
			t.Errorf("tile %s: %+v", id, tl)
		}
		strip = append(strip, tl.Rect)
	}
	sameRects(t, strip, Rect{158, 540, 320, 180}, Rect{480, 540, 320, 180}, Rect{802, 540, 320, 180})

	t.Run("alone, the featured participant fills the frame", func(t *testing.T) {
		f := compute(t, hd, cfg, ps[2:3])
		sameRects(t, rects(f), Rect{0, 0, 1280, 720})
	})
	t.Run("only the string true counts; the first flagged in order wins", func(t *testing.T) {
		ps := people(3, Size{640, 480}, func(i int) map[string]string {
			return map[string]string{"featured": []string{"TRUE", "true", "true"}[i]}
		})
		f := compute(t, hd, cfg, ps)
		if ft, _ := f.Tile("p2"); ft.Role != RoleFeatured {
			t.Errorf("p2 should be featured: %+v", f.Tiles)
		}
		if ft, _ := f.Tile("p3"); ft.Role != RoleTile {
			t.Errorf("p3 should be a tile: %+v", f.Tiles)
		}
	})
	t.Run("an explicit fill mode applies to the featured participant too", func(t *testing.T) {
		cfg := cfg
		cfg.VideoFillMode = FillModeFill
		f := compute(t, hd, cfg, ps)
		if ft, _ := f.Tile("p3"); ft.FillMode != FillModeFill || ft.Dest != ft.Rect {
			t.Errorf("featured %+v", ft)
		}
	})
}

func TestParticipantOrderAttributeNumericThenArrival(t *testing.T) {
	vals := []string{"", "10", "2", "x", "-1", "2", " 3 ", "1e1"}
	ps := people(len(vals), Size{1280, 720}, func(i int) map[string]string {
		if i == 0 {
			return nil // attribute missing
		}
		return map[string]string{"seat": vals[i]}
	})
	// Arrival is not the slice order: the order must come from Arrival, not from the input.
	ps[0], ps[3] = ps[3], ps[0]
	var got []string
	for _, p := range Order(ps, "seat") {
		got = append(got, p.ID)
	}
	// -1, 2, 2 (arrival p3 before p6), " 3 ", 10, 1e1 (=10, later arrival) then missing/invalid in arrival order.
	want := "[p5 p3 p6 p7 p2 p8 p1 p4]"
	if fmt.Sprint(got) != want {
		t.Errorf("order %v, want %s", got, want)
	}
	var arrival []string
	for _, p := range Order(ps, "") {
		arrival = append(arrival, p.ID)
	}
	if fmt.Sprint(arrival) != "[p1 p2 p3 p4 p5 p6 p7 p8]" {
		t.Errorf("arrival order %v", arrival)
	}

	// The grid shows them in that order, reading order.
	cfg := DefaultGrid()
	cfg.ParticipantOrderAttribute = "seat"
	f := compute(t, hd, cfg, ps)
	var shown []string
	for _, tl := range f.Tiles {
		shown = append(shown, tl.ParticipantID)
	}
	if fmt.Sprint(shown) != want {
		t.Errorf("tiles in order %v, want %s", shown, want)
	}
}

func TestOmitStoppedVideo(t *testing.T) {
	ps := people(3, Size{1280, 720}, nil)
	ps[1].Video = false
	cfg := DefaultGrid()
	f := compute(t, hd, cfg, ps)
	if len(f.Tiles) != 3 {
		t.Fatalf("stopped video keeps its tile by default: %+v", f.Tiles)
	}
	if tl, _ := f.Tile("p2"); tl.Video || !tl.Crop.Empty() || !tl.Dest.Empty() || tl.Rect.Empty() {
		t.Errorf("stopped video tile %+v", tl)
	}
	cfg.OmitStoppedVideo = true
	f = compute(t, hd, cfg, ps)
	if _, ok := f.Tile("p2"); ok || len(f.Tiles) != 2 {
		t.Errorf("omitStoppedVideo kept p2: %+v", f.Tiles)
	}
}

func TestPipDefaults(t *testing.T) {
	cfg := DefaultPip()
	cfg.PipParticipantAttribute = "pip"
	ps := people(2, Size{1280, 720}, func(i int) map[string]string {
		return map[string]string{"pip": strconv.FormatBool(i == 1)}
	})
	f := compute(t, hd, cfg, ps)
	// The background participant fills the frame (PiP gap 0); the window is a sixteenth of the frame,
	// bottom right, drawn last.
	sameRects(t, rects(f), Rect{0, 0, 1280, 720}, Rect{960, 540, 320, 180})
	if f.Tiles[1].ParticipantID != "p2" || f.Tiles[1].Role != RolePip || f.Tiles[1].Z != 1 || f.Tiles[1].FillMode != FillModeCover {
		t.Errorf("PiP tile %+v", f.Tiles[1])
	}

	t.Run("positions and offset", func(t *testing.T) {
		want := map[string]Rect{
			PipTopLeft:     {10, 10, 320, 180},
			PipTopRight:    {950, 10, 320, 180},
			PipBottomLeft:  {10, 530, 320, 180},
			PipBottomRight: {950, 530, 320, 180},
		}
		for pos, r := range want {
			cfg := cfg
			cfg.PipPosition, cfg.PipOffset = pos, 9 // rounded up to 10
			f := compute(t, hd, cfg, ps)
			if tl, _ := f.Tile("p2"); tl.Rect != r {
				t.Errorf("%s: %v, want %v", pos, tl.Rect, r)
			}
		}
	})
	t.Run("explicit size and one side from the video's aspect", func(t *testing.T) {
		cfg := cfg
		cfg.PipWidth, cfg.PipHeight = 400, 300
		if tl, _ := compute(t, hd, cfg, ps).Tile("p2"); tl.Rect != (Rect{880, 420, 400, 300}) {
			t.Errorf("400×300: %v", tl.Rect)
		}
		cfg.PipHeight = 0
		if tl, _ := compute(t, hd, cfg, ps).Tile("p2"); tl.Rect != (Rect{880, 494, 400, 226}) {
			t.Errorf("width 400: %v", tl.Rect)
		}
		cfg.PipWidth, cfg.PipHeight = 0, 360
		if tl, _ := compute(t, hd, cfg, ps).Tile("p2"); tl.Rect != (Rect{640, 360, 640, 360}) {
			t.Errorf("height 360: %v", tl.Rect)
		}
		cfg.PipWidth, cfg.PipHeight = 5000, 5000
		if tl, _ := compute(t, hd, cfg, ps).Tile("p2"); tl.Rect != (Rect{0, 0, 1280, 720}) {
			t.Errorf("larger than the frame: %v", tl.Rect)
		}
	})
	t.Run("portrait PiP video gets a portrait window", func(t *testing.T) {
		ps := append([]Participant(nil), ps...)
		ps[1].VideoSize = Size{720, 1280}
		tl, _ := compute(t, hd, cfg, ps).Tile("p2")
		// 9:16 with the area of the 320×180 landscape window: 180×320.
		if tl.Rect != (Rect{1100, 400, 180, 320}) {
			t.Errorf("portrait window %v", tl.Rect)
		}
	})
	t.Run("STATIC keeps the window when alone, DYNAMIC fills the frame", func(t *testing.T) {
		alone := ps[1:]
		sameRects(t, rects(compute(t, hd, cfg, alone)), Rect{960, 540, 320, 180})
		cfg := cfg
		cfg.PipBehavior = PipDynamic
		sameRects(t, rects(compute(t, hd, cfg, alone)), Rect{0, 0, 1280, 720})
		// Not alone: DYNAMIC is the same as STATIC.
		sameRects(t, rects(compute(t, hd, cfg, ps)), Rect{0, 0, 1280, 720}, Rect{960, 540, 320, 180})
	})
	t.Run("no PiP participant: just the background", func(t *testing.T) {
		cfg := DefaultPip()
		f := compute(t, hd, cfg, ps)
		sameRects(t, rects(f), Rect{0, 0, 640, 720}, Rect{640, 0, 640, 720})
	})
	t.Run("featured background with a PiP window", func(t *testing.T) {
		cfg := cfg
		cfg.FeaturedParticipantAttribute = "host"
		ps := people(4, Size{1280, 720}, func(i int) map[string]string {
			return map[string]string{"pip": strconv.FormatBool(i == 0), "host": strconv.FormatBool(i <= 1)}
		})
		f := compute(t, hd, cfg, ps)
		// p1 is both flagged: PiP wins, so p2 is the featured one.
		if tl, _ := f.Tile("p1"); tl.Role != RolePip {
			t.Errorf("p1 %+v", tl)
		}
		if tl, _ := f.Tile("p2"); tl.Role != RoleFeatured || tl.FillMode != FillModeCover {
			t.Errorf("p2 %+v", tl)
		}
	})
}

func TestFitModes(t *testing.T) {
	src := Size{1280, 720}
	tile := Rect{100, 50, 720, 720}
	crop, dest := Fit(FillModeCover, tile, src)
	if crop != (Rect{280, 0, 720, 720}) || dest != tile {
		t.Errorf("COVER: crop %v dest %v", crop, dest)
	}
	crop, dest = Fit(FillModeContain, tile, src)
	if crop != (Rect{0, 0, 1280, 720}) || dest != (Rect{100, 206, 720, 406}) {
		t.Errorf("CONTAIN: crop %v dest %v", crop, dest)
	}
	crop, dest = Fit(FillModeFill, tile, src)
	if crop != (Rect{0, 0, 1280, 720}) || dest != tile {
		t.Errorf("FILL: crop %v dest %v", crop, dest)
	}
	// A portrait phone in a 16:9 tile: COVER keeps the middle band.
	crop, _ = Fit(FillModeCover, Rect{0, 0, 640, 360}, Size{720, 1280})
	if crop != (Rect{0, 436, 720, 406}) {
		t.Errorf("COVER portrait: %v", crop)
	}
	crop, dest = Fit(FillModeCover, tile, Size{})
	if !crop.Empty() || dest != tile {
		t.Errorf("unknown size: crop %v dest %v", crop, dest)
	}
	// Odd sources stay inside themselves.
	crop, _ = Fit(FillModeCover, Rect{0, 0, 2, 2}, Size{1, 3})
	if crop != (Rect{0, 0, 1, 2}) {
		t.Errorf("1×3 source: %v", crop)
	}
}

// Every documented case: 1–12 participants × each aspect ratio × each fill mode, featured or not,
// with and without video, at common and odd output sizes; the invariants checked on each frame.
func TestGridAllCases(t *testing.T) {
	sizes := []Size{{1280, 720}, {1920, 1080}, {720, 1280}, {1080, 1920}, {640, 360}, {854, 480}, {1024, 768}, {641, 359}, {1001, 777}, {320, 180}, {2, 2}, {17, 9}}
	sources := []Size{{1280, 720}, {640, 480}, {720, 1280}, {1, 1}, {641, 361}, {}}
	cases := 0
	for _, out := range sizes {
		for n := 1; n <= 12; n++ {
			for _, aspect := range []string{AspectVideo, AspectSquare, AspectPortrait, AspectAuto} {
				for _, fill := range []string{"", FillModeFill, FillModeCover, FillModeContain} {
					for _, feat := range []int{-1, 0, n - 1, n / 2} {
						for gi, gap := range []int{2, 0, 5, 40} {
							src := sources[(n+gi)%len(sources)]
							ps := people(n, src, func(i int) map[string]string {
								return map[string]string{"f": strconv.FormatBool(i == feat), "o": strconv.Itoa((i * 7) % 5)}
							})
							// Mixed sources and one participant without video.
							ps[n-1].VideoSize = sources[(n+gi+1)%len(sources)]
							if n > 2 {
								ps[1].Video, ps[1].VideoSize = false, Size{}
							}
							cfg := DefaultGrid()
							cfg.VideoAspectRatio, cfg.VideoFillMode, cfg.GridGap = aspect, fill, gap
							cfg.ParticipantOrderAttribute = "o"
							if feat >= 0 {
								cfg.FeaturedParticipantAttribute = "f"
							}
							cfg.OmitStoppedVideo = gi == 3
							f, err := Compute(out, cfg, ps)
							if err != nil {
								t.Fatal(err)
							}
							name := fmt.Sprintf("%dx%d n=%d %s fill=%q featured=%d gap=%d", out.Width, out.Height, n, aspect, fill, feat, gap)
							assertFrame(t, name, out, cfg, ps, f)
							// At any usable size, with gaps IVS users set, everyone gets a real tile.
							if out.Width >= 320 && out.Height >= 180 && gap <= 5 {
								for _, tl := range f.Tiles {
									if tl.Rect.Width < 16 || tl.Rect.Height < 16 {
										t.Errorf("%s: tile %s is only %v", name, tl.ParticipantID, tl.Rect)
									}
								}
							}
							cases++
						}
					}
				}
			}
		}
	}
	t.Logf("%d grid frames checked", cases)
}

func TestPipAllCases(t *testing.T) {
	sizes := []Size{{1280, 720}, {1920, 1080}, {720, 1280}, {640, 360}, {641, 359}, {1001, 777}, {2, 2}, {31, 17}}
	cases := 0
	for _, out := range sizes {
		for n := 1; n <= 12; n++ {
			for _, pos := range []string{PipTopLeft, PipTopRight, PipBottomLeft, PipBottomRight} {
				for _, beh := range []string{PipStatic, PipDynamic} {
					for _, pipAt := range []int{-1, 0, n - 1} {
						for vi, dims := range [][3]int{{0, 0, 0}, {0, 0, 24}, {400, 0, 0}, {0, 300, 7}, {333, 111, 3000}, {5000, 5000, 0}, {1, 1, 1}} {
							for _, feat := range []int{-1, 0, 1} {
								ps := people(n, Size{1280, 720}, func(i int) map[string]string {
									return map[string]string{"pip": strconv.FormatBool(i == pipAt), "f": strconv.FormatBool(i == feat)}
								})
								if pipAt >= 0 && vi%2 == 1 {
									ps[pipAt].VideoSize = Size{720, 1280}
								}
								cfg := DefaultPip()
								cfg.PipParticipantAttribute = "pip"
								cfg.PipPosition, cfg.PipBehavior = pos, beh
								cfg.PipWidth, cfg.PipHeight, cfg.PipOffset = dims[0], dims[1], dims[2]
								if feat >= 0 {
									cfg.FeaturedParticipantAttribute = "f"
								}
								cfg.VideoFillMode = []string{"", FillModeFill, FillModeCover, FillModeContain}[vi%4]
								f, err := Compute(out, cfg, ps)
								if err != nil {
									t.Fatal(err)
								}
								name := fmt.Sprintf("%dx%d n=%d %s %s pip=%d dims=%v featured=%d", out.Width, out.Height, n, pos, beh, pipAt, dims, feat)
								assertFrame(t, name, out, cfg, ps, f)
								if pipAt >= 0 {
									if tl := f.Tiles[len(f.Tiles)-1]; tl.Role != RolePip || tl.ParticipantID != ps[pipAt].ID {
										t.Errorf("%s: last tile %+v is not the PiP participant", name, tl)
									}
								}
								cases++
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d PiP frames checked", cases)
}

func TestFromModel(t *testing.T) {
	str := func(s string) *string { return &s }
	i32 := func(v int32) *int32 { return &v }
	yes := true

	c, err := FromModel(nil)
	if err != nil || c != DefaultGrid() {
		t.Errorf("nil layout: %+v %v", c, err)
	}
	c, err = FromModel(&apimodel.LayoutConfiguration{Grid: &apimodel.GridConfiguration{}})
	if err != nil || c.GridGap != 2 || c.VideoAspectRatio != AspectVideo || c.VideoFillMode != "" {
		t.Errorf("empty grid: %+v %v", c, err)
	}
	c, err = FromModel(&apimodel.LayoutConfiguration{Grid: &apimodel.GridConfiguration{
		FeaturedParticipantAttribute: str("f"), ParticipantOrderAttribute: str("o"), OmitStoppedVideo: &yes,
		GridGap: i32(0), VideoAspectRatio: str("SQUARE"), VideoFillMode: str("FILL"),
	}})
	want := Config{Kind: KindGrid, FeaturedParticipantAttribute: "f", ParticipantOrderAttribute: "o", OmitStoppedVideo: true, GridGap: 0, VideoAspectRatio: AspectSquare, VideoFillMode: FillModeFill}
	if err != nil || c != want {
		t.Errorf("grid: %+v %v", c, err)
	}
	c, err = FromModel(&apimodel.LayoutConfiguration{Pip: &apimodel.PipConfiguration{}})
	if err != nil || c != DefaultPip() || c.GridGap != 0 || c.PipPosition != PipBottomRight || c.PipBehavior != PipStatic {
		t.Errorf("empty pip: %+v %v", c, err)
	}
	c, err = FromModel(&apimodel.LayoutConfiguration{Pip: &apimodel.PipConfiguration{
		FeaturedParticipantAttribute: str("f"), ParticipantOrderAttribute: str("o"), OmitStoppedVideo: &yes,
		GridGap: i32(4), VideoFillMode: str("CONTAIN"), PipParticipantAttribute: str("p"), PipBehavior: str("DYNAMIC"),
		PipPosition: str("TOP_LEFT"), PipWidth: i32(320), PipHeight: i32(240), PipOffset: i32(8),
	}})
	wantPip := Config{Kind: KindPip, FeaturedParticipantAttribute: "f", ParticipantOrderAttribute: "o", OmitStoppedVideo: true,
		GridGap: 4, VideoFillMode: FillModeContain, PipParticipantAttribute: "p", PipBehavior: PipDynamic,
		PipPosition: PipTopLeft, PipWidth: 320, PipHeight: 240, PipOffset: 8}
	if err != nil || c != wantPip {
		t.Errorf("pip: %+v %v", c, err)
	}

	for name, lc := range map[string]*apimodel.LayoutConfiguration{
		"both":         {Grid: &apimodel.GridConfiguration{}, Pip: &apimodel.PipConfiguration{}},
		"aspect":       {Grid: &apimodel.GridConfiguration{VideoAspectRatio: str("WIDE")}},
		"fill":         {Grid: &apimodel.GridConfiguration{VideoFillMode: str("STRETCH")}},
		"gap":          {Grid: &apimodel.GridConfiguration{GridGap: i32(-1)}},
		"position":     {Pip: &apimodel.PipConfiguration{PipPosition: str("CENTER")}},
		"behavior":     {Pip: &apimodel.PipConfiguration{PipBehavior: str("FLOAT")}},
		"width":        {Pip: &apimodel.PipConfiguration{PipWidth: i32(0)}},
		"height":       {Pip: &apimodel.PipConfiguration{PipHeight: i32(-3)}},
		"offset":       {Pip: &apimodel.PipConfiguration{PipOffset: i32(-1)}},
		"pip fill":     {Pip: &apimodel.PipConfiguration{VideoFillMode: str("cover")}},
		"pip gap":      {Pip: &apimodel.PipConfiguration{GridGap: i32(-2)}},
		"grid aspect2": {Grid: &apimodel.GridConfiguration{VideoAspectRatio: str("")}},
	} {
		if _, err := FromModel(lc); !errors.Is(err, ErrInvalidLayout) {
			t.Errorf("%s: %v, want ErrInvalidLayout", name, err)
		}
	}
	if _, err := Compute(hd, Config{Kind: KindGrid}, nil); !errors.Is(err, ErrInvalidLayout) {
		t.Errorf("zero Config: %v", err)
	}

	w, h := int32(1920), int32(1080)
	if s := OutputSize(&apimodel.Video{Width: &w, Height: &h}); s != (Size{1920, 1080}) {
		t.Errorf("OutputSize %v", s)
	}
	if s := OutputSize(nil); s != (Size{1280, 720}) {
		t.Errorf("default OutputSize %v", s)
	}
	if s := OutputSize(&apimodel.Video{Width: &w}); s != (Size{1920, 720}) {
		t.Errorf("width only OutputSize %v", s)
	}
}

func TestEmptyStage(t *testing.T) {
	for _, cfg := range []Config{DefaultGrid(), DefaultPip()} {
		f, err := Compute(hd, cfg, nil)
		if err != nil || len(f.Tiles) != 0 || f.Size != hd {
			t.Errorf("%v: %+v %v", cfg.Kind, f, err)
		}
	}
}

func BenchmarkComputeGrid12(b *testing.B) {
	ps := people(12, Size{1280, 720}, func(i int) map[string]string { return map[string]string{"o": strconv.Itoa(12 - i)} })
	cfg := DefaultGrid()
	cfg.ParticipantOrderAttribute = "o"
	for b.Loop() {
		if _, err := Compute(Size{1920, 1080}, cfg, ps); err != nil {
			b.Fatal(err)
		}
	}
}
