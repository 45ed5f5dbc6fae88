package loadtest

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// generatorDescription says where the load generator runs: its CPUs and
// GOMAXPROCS, and the machine's.
func generatorDescription() string {
	host, _ := os.Hostname()
	cpus := "all CPUs"
	if m, err := getAffinity(0); err == nil {
		var list []int
		for i := range 1024 {
			if m[i/64]&(1<<(i%64)) != 0 {
				list = append(list, i)
			}
		}
		if len(list) < onlineCPUs() || len(list) == 0 {
			cpus = "CPU " + cpuListString(list)
		}
	}
	return fmt.Sprintf("%s, GOMAXPROCS %d; machine %s: %d CPUs (%s), %s",
		cpus, runtime.GOMAXPROCS(0), host, onlineCPUs(), cpuModel(), runtime.Version())
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// onlineCPUs counts the machine's CPUs, whatever this process is pinned to.
func onlineCPUs() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, _, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "processor" {
			n++
		}
	}
	if n == 0 {
		return runtime.NumCPU()
	}
	return n
}
