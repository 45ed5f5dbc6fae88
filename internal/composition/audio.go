package composition

import "sync"

// The mix is 48 kHz stereo signed 16-bit PCM, interleaved: what the
// decoders write and the encoder reads (ffmpeg's s16le).
const (
	sampleRate    = 48000
	channels      = 2
	chunkFrames   = 960 // 20 ms
	chunkSamples  = chunkFrames * channels
	prebufSamples = 2 * chunkSamples  // 40 ms buffered before an input is heard
	maxBufSamples = 15 * chunkSamples // 300 ms: beyond it the oldest is dropped
	keepSamples   = 5 * chunkSamples  // what is kept when dropping
)

// audioBuffer is one participant's decoded audio waiting to be mixed. The
// decoder's reader appends, the mixer takes 20 ms at a time; it absorbs the
// jitter between the two clocks and bounds the delay.
type audioBuffer struct {
	mu      sync.Mutex
	samples []int16
	primed  bool // prebufSamples arrived since the buffer last ran dry
}

func (b *audioBuffer) write(s []int16) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.samples = append(b.samples, s...)
	if len(b.samples) > maxBufSamples {
		// The decoder runs ahead of the mix (a burst after a stall): keep
		// the newest, so that the delay stays low.
		n := copy(b.samples, b.samples[len(b.samples)-keepSamples:])
		b.samples = b.samples[:n]
	}
	if len(b.samples) >= prebufSamples {
		b.primed = true
	}
}

// addTo adds the next chunk of this buffer into mix (len chunkSamples); a
// buffer that ran dry adds nothing until it is primed again.
func (b *audioBuffer) addTo(mix []int32) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.primed {
		return
	}
	n := min(len(mix), len(b.samples))
	for i := 0; i < n; i++ {
		mix[i] += int32(b.samples[i])
	}
	rest := copy(b.samples, b.samples[n:])
	b.samples = b.samples[:rest]
	if n < len(mix) {
		b.primed = false
	}
}

// clampPCM turns the sum of the inputs into s16le bytes, saturating.
func clampPCM(mix []int32, out []byte) {
	for i, v := range mix {
		if v > 32767 {
			v = 32767
		} else if v < -32768 {
			v = -32768
		}
		out[2*i] = byte(v)
		out[2*i+1] = byte(v >> 8)
	}
}
