package loadtest

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histogram counts durations in log-linear buckets: exact below 32 ns, and
// 32 buckets per power of two above (at most about 3 % error), up to hours.
// Recording is one atomic add, so any number of goroutines may record at
// once; it never allocates.
type histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Int64
	max    atomic.Int64
}

const (
	histSub     = 32 // buckets per power of two
	histBuckets = 64 * histSub
)

func histIndex(v int64) int {
	if v < histSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	e := bits.Len64(uint64(v)) - 6 // v>>e is in [32, 63]
	return (e+1)*histSub + int(v>>e) - histSub
}

// histLow is the smallest value of bucket i; histHigh one past the largest.
func histLow(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	e := i/histSub - 1
	return int64(i%histSub+histSub) << e
}

func histHigh(i int) int64 {
	if i < histSub {
		return int64(i) + 1
	}
	e := i/histSub - 1
	return int64(i%histSub+histSub+1) << e
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0 // clocks of one process do not go backwards much; count as 0
	}
	h.counts[histIndex(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

func (h *histogram) count() uint64 { return h.n.Load() }

// quantile returns the value below which the fraction q of the recorded
// values lie (the middle of the bucket where it falls).
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		if cum >= rank {
			mid := (histLow(i) + histHigh(i) - 1) / 2
			if m := h.max.Load(); mid > m {
				mid = m
			}
			return time.Duration(mid)
		}
	}
	return time.Duration(h.max.Load())
}

func (h *histogram) mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / int64(n))
}

// Percentiles summarise a distribution of durations, in milliseconds.
type Percentiles struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"meanMs"`
	P50   float64 `json:"p50Ms"`
	P95   float64 `json:"p95Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func (h *histogram) percentiles() Percentiles {
	return Percentiles{
		Count: h.count(),
		Mean:  ms(h.mean()),
		P50:   ms(h.quantile(0.50)),
		P95:   ms(h.quantile(0.95)),
		P99:   ms(h.quantile(0.99)),
		Max:   ms(time.Duration(h.max.Load())),
	}
}
