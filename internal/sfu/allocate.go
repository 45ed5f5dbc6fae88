package sfu

// Layer allocation: which simulcast encoding a subscriber's video section
// gets. The rules, in order:
//
//   - a pinned encoding (the WHEP layer link) wins while it is sending;
//   - otherwise the highest sending encoding whose measured bitrate fits the
//     remaining bandwidth estimate, asking 15% headroom to move up, so that
//     an estimate hovering at a layer's bitrate does not flap;
//   - if none fits, the lowest sending encoding: some video beats none;
//   - if nothing is sending (yet), the target stays as it is.

type layerStat struct {
	bitrate int64 // measured, bits per second
	active  bool  // packets arrived in the last second
}

const upgradeHeadroom = 115 // percent

// chooseLayer returns the encoding to target, given the layers in
// ascending quality, the budget in bits per second, the current target and
// the pinned layer (-1: none).
func chooseLayer(layers []layerStat, budget int64, target, pinned int32) int32 {
	anyActive := false
	for _, l := range layers {
		anyActive = anyActive || l.active
	}
	if !anyActive {
		return target
	}
	if pinned >= 0 && int(pinned) < len(layers) {
		if layers[pinned].active {
			return pinned
		}
		return nearestActive(layers, pinned)
	}
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		if !l.active {
			continue
		}
		need := l.bitrate
		if int32(i) > target {
			need = need * upgradeHeadroom / 100
		}
		if need <= budget {
			return int32(i)
		}
	}
	for i, l := range layers {
		if l.active {
			return int32(i)
		}
	}
	return target
}

// nearestActive finds the sending layer closest to want, preferring the
// lower one on a tie (it is more likely to fit).
func nearestActive(layers []layerStat, want int32) int32 {
	for d := int32(1); d < int32(len(layers)); d++ {
		if lo := want - d; lo >= 0 && layers[lo].active {
			return lo
		}
		if hi := want + d; int(hi) < len(layers) && layers[hi].active {
			return hi
		}
	}
	return want
}
