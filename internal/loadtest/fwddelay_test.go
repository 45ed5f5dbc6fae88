package loadtest

import (
	"math"
	"strings"
	"testing"
)

func TestParseForwardDelayAndQuantiles(t *testing.T) {
	before, err := parseForwardDelay(strings.NewReader(`# HELP rostrum_media_forward_delay_seconds x
# TYPE rostrum_media_forward_delay_seconds histogram
rostrum_media_forward_delay_seconds_bucket{le="0.001"} 10
rostrum_media_forward_delay_seconds_bucket{le="0.002"} 10
rostrum_media_forward_delay_seconds_bucket{le="+Inf"} 10
rostrum_media_forward_delay_seconds_sum 0.005
rostrum_media_forward_delay_seconds_count 10
rostrum_media_join_seconds_bucket{kind="publish",le="0.05"} 3
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != 3 || before[math.Inf(1)] != 10 {
		t.Fatalf("parsed %v", before)
	}
	after := delayBuckets{0.001: 60, 0.002: 110, math.Inf(1): 110}
	n, ms := delayQuantiles(before, after, 0.5, 1)
	// 100 new: 50 in (0, 1 ms], 50 in (1, 2 ms]; the median is at 1 ms.
	if n != 100 || math.Abs(ms[0]-1) > 1e-9 || math.Abs(ms[1]-2) > 1e-9 {
		t.Errorf("count %v, p50 %v ms, max %v ms", n, ms[0], ms[1])
	}
	// Beyond the last finite bound the bound stands for the value.
	n, ms = delayQuantiles(delayBuckets{}, delayBuckets{0.001: 1, math.Inf(1): 2}, 0.99)
	if n != 2 || ms[0] != 1 {
		t.Errorf("count %v, p99 %v ms", n, ms[0])
	}
	if _, err := parseForwardDelay(strings.NewReader("go_goroutines 5\n")); err == nil {
		t.Error("metrics without the histogram parsed")
	}
}
