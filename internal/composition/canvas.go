package composition

import "github.com/rostrum-dev/rostrum/internal/composition/layout"

// frame is a picture in planar YUV 4:2:0 (I420), the layout ffmpeg's
// rawvideo yuv420p uses: the Y plane, then U and V at half size each way.
// Widths and heights are even (the layout package keeps every rectangle
// even for this reason).
type frame struct {
	w, h int
	buf  []byte // len w*h*3/2
}

func newFrame(w, h int) *frame {
	return &frame{w: w, h: h, buf: make([]byte, w*h*3/2)}
}

func frameBytes(w, h int) int { return w * h * 3 / 2 }

func (f *frame) planes() (y, u, v []byte) {
	ys := f.w * f.h
	cs := ys / 4
	return f.buf[:ys], f.buf[ys : ys+cs], f.buf[ys+cs : ys+2*cs]
}

// background is the colour of the canvas where no video is: black
// (BT.601 limited range: Y 16, U and V 128).
const bgY, bgU, bgV = 16, 128, 128

// fill paints the rectangle r (clipped to the frame) in the background
// colour.
func (f *frame) fill(r layout.Rect) {
	r = clip(r, f.w, f.h)
	if r.Empty() {
		return
	}
	y, u, v := f.planes()
	for row := r.Y; row < r.Bottom(); row++ {
		line := y[row*f.w+r.X : row*f.w+r.Right()]
		for i := range line {
			line[i] = bgY
		}
	}
	cw := f.w / 2
	for row := r.Y / 2; row < r.Bottom()/2; row++ {
		lu := u[row*cw+r.X/2 : row*cw+r.Right()/2]
		lv := v[row*cw+r.X/2 : row*cw+r.Right()/2]
		for i := range lu {
			lu[i], lv[i] = bgU, bgV
		}
	}
}

// clear paints the whole frame in the background colour.
func (f *frame) clear() { f.fill(layout.Rect{Width: f.w, Height: f.h}) }

// draw copies src into the frame with its top-left corner at (x, y),
// scaling it to w×h by nearest neighbour when sizes differ (only while a
// decoder is being restarted at a tile's new size: the decoders scale with
// ffmpeg's filters otherwise, and draw is then a row copy).
func (f *frame) draw(src *frame, dest layout.Rect) {
	vis := clip(dest, f.w, f.h)
	if vis.Empty() || src == nil || src.w == 0 || src.h == 0 {
		return
	}
	dy, du, dv := f.planes()
	sy, su, sv := src.planes()
	if src.w == dest.Width && src.h == dest.Height {
		for row := vis.Y; row < vis.Bottom(); row++ {
			sr := row - dest.Y
			copy(dy[row*f.w+vis.X:row*f.w+vis.Right()], sy[sr*src.w+vis.X-dest.X:])
		}
		cw, scw := f.w/2, src.w/2
		for row := vis.Y / 2; row < vis.Bottom()/2; row++ {
			sr := row - dest.Y/2
			off := vis.X/2 - dest.X/2
			copy(du[row*cw+vis.X/2:row*cw+vis.Right()/2], su[sr*scw+off:])
			copy(dv[row*cw+vis.X/2:row*cw+vis.Right()/2], sv[sr*scw+off:])
		}
		return
	}
	scale := func(dp, sp []byte, dw, sw, sh int, d layout.Rect, vx0, vx1, vy0, vy1 int) {
		for row := vy0; row < vy1; row++ {
			srow := (row - d.Y) * sh / d.Height
			for col := vx0; col < vx1; col++ {
				scol := (col - d.X) * sw / d.Width
				dp[row*dw+col] = sp[srow*sw+scol]
			}
		}
	}
	scale(dy, sy, f.w, src.w, src.h, dest, vis.X, vis.Right(), vis.Y, vis.Bottom())
	half := layout.Rect{X: dest.X / 2, Y: dest.Y / 2, Width: dest.Width / 2, Height: dest.Height / 2}
	if half.Empty() {
		return
	}
	scale(du, su, f.w/2, src.w/2, src.h/2, half, vis.X/2, vis.Right()/2, vis.Y/2, vis.Bottom()/2)
	scale(dv, sv, f.w/2, src.w/2, src.h/2, half, vis.X/2, vis.Right()/2, vis.Y/2, vis.Bottom()/2)
}

// clip is r within a w×h frame, with even edges.
func clip(r layout.Rect, w, h int) layout.Rect {
	x0, y0 := max(r.X, 0)&^1, max(r.Y, 0)&^1
	x1, y1 := min(r.Right(), w)&^1, min(r.Bottom(), h)&^1
	if x1 <= x0 || y1 <= y0 {
		return layout.Rect{}
	}
	return layout.Rect{X: x0, Y: y0, Width: x1 - x0, Height: y1 - y0}
}
