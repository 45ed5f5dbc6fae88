package testutil

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// What the measurements (the tests that run with ROSTRUM_MEASURE=1) read
// of processes, from Linux's /proc.

// ClockTicks is USER_HZ, the unit of CPUTicks: 100 on Linux.
const ClockTicks = 100

// CPUTicks is the CPU time (user + system, in ClockTicks) the process has
// used; ok is false when it is gone.
func CPUTicks(pid int) (ticks int64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	u, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return u + st, true
}

// ProcBytes reads a "Name: N kB" line of /proc/pid/file ("status" VmRSS:,
// "smaps_rollup" Pss:), in bytes; 0 when there is none.
func ProcBytes(pid int, file, name string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name) {
			kb, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Children are the processes whose parent is this one and whose command
// is comm (e.g. "ffmpeg").
func Children(comm string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	me := strconv.Itoa(os.Getpid())
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		c := s[strings.IndexByte(s, '(')+1 : strings.LastIndexByte(s, ')')]
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if fields[1] == me && c == comm {
			out = append(out, pid)
		}
	}
	return out
}
