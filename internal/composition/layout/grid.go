package layout

import "math"

// The grid arithmetic. Every function here takes a region with even coordinates and an even gap and
// returns even rectangles, in row-major order, rows filled left to right and the last row centred.

// gridFixed lays n tiles of aspect ratio r (width/height) in region, gap pixels apart: of every column
// count from 1 to n (rows following), it keeps the one whose tiles are largest, and on a tie the one
// that leaves fewer empty cells, then the one with more columns in a landscape region (more rows in
// a portrait one). The block of tiles is centred in the region. Tiles are all empty when
// not even 2×2 tiles fit.
func gridFixed(region Rect, n int, r float64, gap int) (tiles []Rect, block Rect) {
	if n <= 0 {
		return nil, Rect{}
	}
	bestCols, bestW, bestH, bestEmpty := 0, 0, 0, 0
	for cols := 1; cols <= n; cols++ {
		rows := (n + cols - 1) / cols
		cw := (region.Width - (cols-1)*gap) / cols
		ch := (region.Height - (rows-1)*gap) / rows
		w, h := fitAspect(cw, ch, r)
		if w == 0 {
			continue
		}
		empty := cols*rows - n
		better := w*h > bestW*bestH
		if w*h == bestW*bestH {
			// On a tie: fewer empty cells, then (columns growing) more columns in a landscape region.
			better = empty < bestEmpty || (empty == bestEmpty && region.Width >= region.Height)
		}
		if better {
			bestCols, bestW, bestH, bestEmpty = cols, w, h, empty
		}
	}
	if bestCols == 0 {
		return make([]Rect, n), Rect{}
	}
	return place(region, n, bestCols, bestW, bestH, gap)
}

// gridFill lays n tiles in region so that they fill it: of every column count from 1 to n, it keeps
// the one whose cells (region divided into rows×columns, less the gaps) come closest to the aspect
// ratio r, measured as |ln(cell aspect / r)|; on a tie the one with fewer empty cells, then the one
// with more columns in a landscape region (more rows in a portrait one). Tiles are the cells, so the
// block covers the region except for an even-rounding remainder and the empty cells of the last row.
func gridFill(region Rect, n int, r float64, gap int) (tiles []Rect, block Rect) {
	if n <= 0 {
		return nil, Rect{}
	}
	const eps = 1e-9
	bestCols, bestW, bestH, bestEmpty, bestScore := 0, 0, 0, 0, math.Inf(1)
	landscape := region.Width >= region.Height
	for cols := 1; cols <= n; cols++ {
		rows := (n + cols - 1) / cols
		cw := evenFloor((region.Width - (cols-1)*gap) / cols)
		ch := evenFloor((region.Height - (rows-1)*gap) / rows)
		if cw < 2 || ch < 2 {
			continue
		}
		score := math.Abs(math.Log(float64(cw) / float64(ch) / r))
		empty := cols*rows - n
		better := score < bestScore-eps
		if !better && math.Abs(score-bestScore) <= eps {
			// Columns are tried in increasing order: on a full tie, a later (wider) one wins in a
			// landscape region and loses in a portrait one.
			better = empty < bestEmpty || (empty == bestEmpty && landscape)
		}
		if better {
			bestCols, bestW, bestH, bestEmpty, bestScore = cols, cw, ch, empty, score
		}
	}
	if bestCols == 0 {
		return make([]Rect, n), Rect{}
	}
	return place(region, n, bestCols, bestW, bestH, gap)
}

// place puts n tiles of w×h, cols to a row, gap apart, the block centred in region and each row
// centred in the block (so only the last row, when short, shows it).
func place(region Rect, n, cols, w, h, gap int) (tiles []Rect, block Rect) {
	rows := (n + cols - 1) / cols
	bw := cols*w + (cols-1)*gap
	bh := rows*h + (rows-1)*gap
	block = Rect{region.X + evenFloor((region.Width-bw)/2), region.Y + evenFloor((region.Height-bh)/2), bw, bh}
	tiles = make([]Rect, 0, n)
	for row := 0; row < rows; row++ {
		k := min(cols, n-row*cols)
		rw := k*w + (k-1)*gap
		x := block.X + evenFloor((bw-rw)/2)
		y := block.Y + row*(h+gap)
		for i := 0; i < k; i++ {
			tiles = append(tiles, Rect{x + i*(w+gap), y, w, h})
		}
	}
	return tiles, block
}

// featured lays out a featured participant and n others: the others in a strip along the bottom of
// the frame, laid out by gridFixed with tile aspect r in the bottom quarter of the frame and pushed to
// its bottom edge; the featured slot takes the full width above the strip, less the gap. With no
// others, or when the strip's tiles would be smaller than 2×2, the featured slot is the whole frame.
func featured(frame Rect, n int, r float64, gap int) (slot Rect, others []Rect) {
	if n == 0 {
		return frame, nil
	}
	strip := Rect{frame.X, frame.Y, frame.Width, evenFloor(frame.Height / 4)}
	others, block := gridFixed(strip, n, r, gap)
	if block.Empty() {
		return frame, others
	}
	dy := frame.Bottom() - block.Bottom()
	for i := range others {
		others[i].Y += dy
	}
	top := block.Y + dy - gap
	if top < 2 {
		return Rect{}, others
	}
	return Rect{frame.X, frame.Y, frame.Width, evenFloor(top - frame.Y)}, others
}

// aspectOf is the tile aspect ratio a grid's videoAspectRatio asks for; AUTO takes the participants'
// dominant video aspect.
func aspectOf(videoAspectRatio string, ps []Participant) float64 {
	switch videoAspectRatio {
	case AspectSquare:
		return 1
	case AspectPortrait:
		return 3.0 / 4.0
	case AspectAuto:
		return dominantAspect(ps)
	default:
		return 16.0 / 9.0
	}
}
