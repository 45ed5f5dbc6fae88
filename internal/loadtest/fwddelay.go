package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// The server's own share of the latency the report measures end to end:
// rostrum serve keeps, per packet a publisher sent, the time from reading
// it to its last subscriber's send returning
// (rostrum_media_forward_delay_seconds). The generator reads the histogram
// before and after the window and reports quantiles of the difference; the
// send → receive latency also holds the generator's own work at both ends.

const forwardDelayMetric = "rostrum_media_forward_delay_seconds"

// delayBuckets are a cumulative histogram: upper bound (seconds, +Inf
// last) → count.
type delayBuckets map[float64]float64

// scrapeForwardDelay reads the histogram from a server's /metrics. A server
// without it (another build, or /metrics elsewhere) gives an error.
func scrapeForwardDelay(ctx context.Context, c *http.Client, metricsURL string) (delayBuckets, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", metricsURL, resp.Status)
	}
	return parseForwardDelay(resp.Body)
}

func parseForwardDelay(r io.Reader) (delayBuckets, error) {
	out := delayBuckets{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	prefix := forwardDelayMetric + `_bucket{le="`
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		le, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		bound, err1 := strconv.ParseFloat(le, 64)
		n, err2 := strconv.ParseFloat(strings.Fields(val)[0], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		out[bound] = n
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no %s in the metrics", forwardDelayMetric)
	}
	return out, nil
}

// delayQuantiles gives, over what was added between before and after, the
// number of packets and the quantiles qs in milliseconds, interpolated
// within a bucket as Prometheus's histogram_quantile does (the last finite
// bound stands for values beyond it).
func delayQuantiles(before, after delayBuckets, qs ...float64) (count float64, ms []float64) {
	bounds := make([]float64, 0, len(after))
	for b := range after {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 {
		return 0, make([]float64, len(qs))
	}
	cum := make([]float64, len(bounds))
	for i, b := range bounds {
		cum[i] = max(0, after[b]-before[b])
	}
	count = cum[len(cum)-1]
	ms = make([]float64, len(qs))
	if count == 0 {
		return 0, ms
	}
	for j, q := range qs {
		rank := q * count
		i := sort.Search(len(cum), func(i int) bool { return cum[i] >= rank })
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = bounds[i-1], cum[i-1]
		}
		hi := bounds[i]
		if math.IsInf(hi, 1) {
			ms[j] = lo * 1000
			continue
		}
		frac := 0.0
		if in := cum[i] - below; in > 0 {
			frac = (rank - below) / in
		}
		ms[j] = (lo + (hi-lo)*frac) * 1000
	}
	return count, ms
}
