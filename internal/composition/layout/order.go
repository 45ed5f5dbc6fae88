package layout

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// Participant is what the layout needs to know of one stage participant.
type Participant struct {
	// ID is the participant's id; the frame's tiles carry it back.
	ID string
	// Attributes are the participant token's attributes.
	Attributes map[string]string
	// Video is true while the participant publishes video that is not stopped (muted video counts as
	// stopped). A participant without video keeps a tile (drawn as background) unless OmitStoppedVideo.
	Video bool
	// VideoSize is the size of the participant's decoded video; zero while not known.
	VideoSize Size
	// Arrival orders participants by when they joined the stage: smaller arrived first (a join time in
	// nanoseconds or a sequence number both work). Equal arrivals fall back to ID.
	Arrival int64
}

// Order sorts participants the way IVS's participantOrderAttribute documents: participants whose
// attribute holds a number come first, in ascending numeric order; participants whose attribute is
// missing, empty or not a number come after them, in arrival order. Equal numbers keep arrival order.
// With no attribute name, the order is arrival order. Order returns a new slice.
func Order(ps []Participant, orderAttribute string) []Participant {
	out := slices.Clone(ps)
	key := func(p Participant) (float64, bool) {
		if orderAttribute == "" {
			return 0, false
		}
		v := strings.TrimSpace(p.Attributes[orderAttribute])
		if v == "" {
			return 0, false
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, false
		}
		return f, true
	}
	slices.SortStableFunc(out, func(a, b Participant) int {
		ka, oka := key(a)
		kb, okb := key(b)
		switch {
		case oka && !okb:
			return -1
		case !oka && okb:
			return 1
		case oka && okb && ka != kb:
			if ka < kb {
				return -1
			}
			return 1
		}
		if a.Arrival != b.Arrival {
			if a.Arrival < b.Arrival {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// flagged is the index of the first participant (in order) whose attribute name holds "true", or -1.
// IVS compares the string value: "TRUE" or "1" do not count.
func flagged(ps []Participant, name string) int {
	if name == "" {
		return -1
	}
	for i, p := range ps {
		if p.Attributes[name] == "true" {
			return i
		}
	}
	return -1
}

// dominantAspect is the aspect ratio (width/height) most of the participants' videos share, the
// earliest in order on a tie, 16:9 when no video size is known. AUTO tiles and the PiP background take
// it so that most pictures need no crop and no bars.
func dominantAspect(ps []Participant) float64 {
	type seen struct {
		aspect float64
		count  int
	}
	var all []seen
	for _, p := range ps {
		if !p.Video || p.VideoSize.Width <= 0 || p.VideoSize.Height <= 0 {
			continue
		}
		a := float64(p.VideoSize.Width) / float64(p.VideoSize.Height)
		i := slices.IndexFunc(all, func(s seen) bool { return math.Abs(s.aspect/a-1) < 0.02 })
		if i < 0 {
			all = append(all, seen{a, 1})
		} else {
			all[i].count++
		}
	}
	best := seen{16.0 / 9.0, 0}
	for _, s := range all {
		if s.count > best.count {
			best = s
		}
	}
	return best.aspect
}
