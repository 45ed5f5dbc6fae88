package loadtest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// procSample is what /proc says of a process at one moment.
type procSample struct {
	at      time.Time
	cpu     time.Duration // user + system time since the process started
	rss     int64         // resident set, bytes
	hwm     int64         // peak resident set, bytes
	threads int
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every
// Linux architecture Go supports.
const clockTick = 100

var errNoProc = errors.New("loadtest: /proc is not available (CPU and memory are measured on Linux only)")

// readProc samples process pid (0: this process).
func readProc(pid int) (procSample, error) {
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	s := procSample{at: time.Now()}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		if runtime.GOOS != "linux" {
			return s, errNoProc
		}
		return s, fmt.Errorf("loadtest: reading the server's CPU time: %w", err)
	}
	// The command name (field 2) may hold spaces: fields count from its ')'.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return s, fmt.Errorf("loadtest: unexpected %s/stat", dir)
	}
	f := strings.Fields(string(stat[end+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return s, fmt.Errorf("loadtest: unexpected %s/stat", dir)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("loadtest: unexpected %s/stat", dir)
	}
	s.cpu = time.Duration(ut+st) * time.Second / clockTick
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, fmt.Errorf("loadtest: reading the server's memory: %w", err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmRSS":
			s.rss = kib(v)
		case "VmHWM":
			s.hwm = kib(v)
		case "Threads":
			s.threads, _ = strconv.Atoi(v)
		}
	}
	return s, nil
}

func kib(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	return n * 1024
}

// cores is the CPU used between two samples, in cores (1.0 = one core busy).
func cores(a, b procSample) float64 {
	wall := b.at.Sub(a.at)
	if wall <= 0 {
		return 0
	}
	return float64(b.cpu-a.cpu) / float64(wall)
}

// parseCPUList reads a CPU list as taskset -c takes it: "0", "0,2", "1-3".
func parseCPUList(s string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("loadtest: CPU list %q: %q is not a CPU number", s, part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("loadtest: CPU list %q: bad range %q", s, part)
			}
		}
		for c := a; c <= b; c++ {
			if c >= 1024 {
				return nil, fmt.Errorf("loadtest: CPU list %q: CPU %d is out of range", s, c)
			}
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("loadtest: empty CPU list %q", s)
	}
	return out, nil
}

// cpuMask is a Linux cpu_set_t for up to 1024 CPUs.
type cpuMask [16]uint64

func maskOf(cpus []int) *cpuMask {
	var m cpuMask
	for _, c := range cpus {
		m[c/64] |= 1 << (c % 64)
	}
	return &m
}

// setAffinity sets the CPU affinity of one thread (tid 0: the calling one).
func setAffinity(tid int, m *cpuMask) error {
	if runtime.GOOS != "linux" {
		return errors.New("loadtest: pinning to CPUs works on Linux only")
	}
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(*m), uintptr(unsafe.Pointer(m)))
	if e != 0 {
		return fmt.Errorf("loadtest: sched_setaffinity: %w", e)
	}
	return nil
}

func getAffinity(tid int) (*cpuMask, error) {
	var m cpuMask
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, uintptr(tid), unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if e != 0 {
		return nil, fmt.Errorf("loadtest: sched_getaffinity: %w", e)
	}
	return &m, nil
}

// PinSelf restricts this process (every thread it has now, and so every one
// it makes later) to cpus, and sets GOMAXPROCS to their number, so that the
// load generator and the server it measures do not share cores.
func PinSelf(cpus []int) error {
	m := maskOf(cpus)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("loadtest: listing threads: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := setAffinity(tid, m); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	runtime.GOMAXPROCS(len(cpus))
	return nil
}

// readMachineBusy is the CPU time all of this machine's CPUs have spent
// busy (neither idle nor waiting for I/O) since boot, from /proc/stat.
func readMachineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, errNoProc
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, errors.New("loadtest: unexpected /proc/stat")
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest times are counted in user already
			break
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, errors.New("loadtest: unexpected /proc/stat")
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTick, nil
}

// machineWatch measures, over a window, how busy the whole machine was, so
// that a report can say how much CPU other processes took from the test.
type machineWatch struct {
	at   time.Time
	busy time.Duration
	ok   bool
}

func startMachineWatch() machineWatch {
	b, err := readMachineBusy()
	return machineWatch{at: time.Now(), busy: b, ok: err == nil}
}

// cores is the machine's busy CPU since the watch started, in cores.
func (w machineWatch) cores() float64 {
	b, err := readMachineBusy()
	wall := time.Since(w.at)
	if !w.ok || err != nil || wall <= 0 {
		return 0
	}
	return float64(b-w.busy) / float64(wall)
}

// UDPCounters are the kernel's machine-wide UDP error counters from
// /proc/net/snmp: datagrams dropped on arrival because the receiving
// socket's buffer was full (RcvbufErrors), and all datagrams dropped on
// arrival for any reason (InErrors, which includes them).
type UDPCounters struct {
	InErrors     int64 `json:"inErrors"`
	RcvbufErrors int64 `json:"rcvbufErrors"`
}

// readUDPCounters reads the "Udp:" rows of /proc/net/snmp (a header row of
// names, then a row of values).
func readUDPCounters() (UDPCounters, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return UDPCounters{}, errNoProc
	}
	return parseUDPCounters(string(b))
}

func parseUDPCounters(snmp string) (UDPCounters, error) {
	var names []string
	for line := range strings.Lines(snmp) {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "Udp:")
		if !ok {
			continue
		}
		if names == nil {
			names = strings.Fields(rest)
			continue
		}
		vals := strings.Fields(rest)
		if len(vals) != len(names) {
			break
		}
		var c UDPCounters
		found := 0
		for i, n := range names {
			var dst *int64
			switch n {
			case "InErrors":
				dst = &c.InErrors
			case "RcvbufErrors":
				dst = &c.RcvbufErrors
			default:
				continue
			}
			v, err := strconv.ParseInt(vals[i], 10, 64)
			if err != nil {
				return UDPCounters{}, errors.New("loadtest: unexpected /proc/net/snmp")
			}
			*dst = v
			found++
		}
		if found == 2 {
			return c, nil
		}
		break
	}
	return UDPCounters{}, errors.New("loadtest: no UDP counters in /proc/net/snmp")
}

// readSocketDrops is the sum of the per-socket drop counters
// (/proc/net/udp and udp6, the last column) of the UDP sockets process pid
// holds open: unlike RcvbufErrors it counts only that process's sockets,
// so it tells the server's overflows from the generator's.
func readSocketDrops(pid int) (int64, error) {
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, errNoProc
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + fd.Name())
		if err != nil {
			continue // closed meanwhile
		}
		if ino, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(ino, "]")] = true
		}
	}
	var drops int64
	for _, f := range []string{"udp", "udp6"} {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/" + f)
		if err != nil {
			continue // no IPv6
		}
		d, err := sumSocketDrops(string(b), inodes)
		if err != nil {
			return 0, err
		}
		drops += d
	}
	return drops, nil
}

// sumSocketDrops adds the drops column of the rows of a /proc/net/udp
// table whose inode is in inodes.
func sumSocketDrops(table string, inodes map[string]bool) (int64, error) {
	var drops int64
	for i, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 13 || !inodes[f[9]] {
			continue
		}
		n, err := strconv.ParseInt(f[12], 10, 64)
		if err != nil {
			return 0, errors.New("loadtest: unexpected /proc/net/udp")
		}
		drops += n
	}
	return drops, nil
}
