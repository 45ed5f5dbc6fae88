package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on
// every Linux architecture Go runs on.
const clockTick = 100

// procSample is a process's CPU time and memory at one moment.
type procSample struct {
	cpu time.Duration // user + system
	rss int64         // bytes
	hwm int64         // peak RSS
}

func readProc(pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name (field 2) may hold spaces: count from its ")".
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, errors.New("bad /proc stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(f[12], 10, 64) // field 15
	s.cpu = time.Duration(utime+stime) * time.Second / clockTick
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			s.rss = kb * 1024
		case "VmHWM":
			s.hwm = kb * 1024
		}
	}
	return s, nil
}

// machineBusy is the CPU time all CPUs of the machine spent neither idle
// nor waiting for I/O, since boot (/proc/stat).
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, errors.New("bad /proc/stat")
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest times are counted in user already
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTick, nil
}

// udpCounters are the machine's UDP receive drops (/proc/net/snmp).
type udpCounters struct{ InErrors, RcvbufErrors int64 }

func readUDP() (udpCounters, error) {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return udpCounters{}, err
	}
	var names []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line)[1:]
		if names == nil {
			names = f
			continue
		}
		var c udpCounters
		for i, n := range names {
			if i >= len(f) {
				break
			}
			v, _ := strconv.ParseInt(f[i], 10, 64)
			switch n {
			case "InErrors":
				c.InErrors = v
			case "RcvbufErrors":
				c.RcvbufErrors = v
			}
		}
		return c, nil
	}
	return udpCounters{}, errors.New("no Udp lines in /proc/net/snmp")
}
