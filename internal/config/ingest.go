package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
)

// Ingest configures the RTMP and RTMPS listeners that take encoders'
// streams into stages (internal/ingest).
type Ingest struct {
	// RTMPListen and RTMPSListen are the listeners' addresses; "" is the
	// default (RTMPListenAddr), "off" disables the listener.
	RTMPListen  string
	RTMPSListen string
	// RTMPSCert and RTMPSKey are the RTMPS certificate and key (PEM
	// files); both empty: a self-signed pair kept in the data directory.
	RTMPSCert string
	RTMPSKey  string
}

// ListenOff disables an ingest listener.
const ListenOff = "off"

// The IANA ports of RTMP, and the one Rostrum's RTMPS listener takes by
// default (IVS's own RTMPS is on 443, which a server that is not root
// cannot bind).
const (
	DefaultRTMPPort  = 1935
	DefaultRTMPSPort = 1936
)

func (c *Config) ingestFlagDefs(fs *flag.FlagSet) {
	in := &c.Ingest
	fs.StringVar(&in.RTMPListen, "rtmp-listen", "", "`address` of the RTMP ingest listener, or off (default: the host of --listen, port 1935; port 0 when --listen's port is 0)")
	fs.StringVar(&in.RTMPSListen, "rtmps-listen", "", "`address` of the RTMPS ingest listener, or off (default: the host of --listen, port 1936; port 0 when --listen's port is 0)")
	fs.StringVar(&in.RTMPSCert, "rtmps-cert", "", "PEM certificate `file` of the RTMPS listener (with --rtmps-key; default: a self-signed pair generated once and kept in the data directory)")
	fs.StringVar(&in.RTMPSKey, "rtmps-key", "", "PEM private key `file` of the RTMPS listener (with --rtmps-cert)")
}

func (c *Config) validateIngest() error {
	var errs []error
	for _, l := range []struct{ flag, v string }{{"--rtmp-listen", c.Ingest.RTMPListen}, {"--rtmps-listen", c.Ingest.RTMPSListen}} {
		if l.v == "" || l.v == ListenOff {
			continue
		}
		if _, port, err := net.SplitHostPort(l.v); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: must be host:port or off: %v", l.flag, l.v, err))
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("%s %q: the port must be a number from 0 to 65535", l.flag, l.v))
		}
	}
	if (c.Ingest.RTMPSCert == "") != (c.Ingest.RTMPSKey == "") {
		errs = append(errs, errors.New("--rtmps-cert and --rtmps-key go together: give both or neither"))
	}
	return errors.Join(errs...)
}

// RTMPListenAddr is the address the RTMP listener binds, "" when off.
func (c *Config) RTMPListenAddr() string { return c.ingestAddr(c.Ingest.RTMPListen, DefaultRTMPPort) }

// RTMPSListenAddr is the address the RTMPS listener binds, "" when off.
func (c *Config) RTMPSListenAddr() string {
	return c.ingestAddr(c.Ingest.RTMPSListen, DefaultRTMPSPort)
}

// ingestAddr applies the default: --listen's host with the protocol's
// port, or with port 0 when --listen itself takes any free port (as tests
// and several servers on one machine do), so that defaults never collide.
func (c *Config) ingestAddr(v string, port int) string {
	switch v {
	case ListenOff:
		return ""
	case "":
		host, lport, _ := net.SplitHostPort(c.Listen)
		if lport == "0" {
			port = 0
		}
		return net.JoinHostPort(host, strconv.Itoa(port))
	}
	return v
}

// RTMPSKeyPair is the RTMPS certificate and key files, and whether they
// are generated (self-signed, in the data directory) rather than given.
func (c *Config) RTMPSKeyPair() (cert, key string, generated bool) {
	if c.Ingest.RTMPSCert != "" {
		return c.Ingest.RTMPSCert, c.Ingest.RTMPSKey, false
	}
	dir := filepath.Join(c.DataDir, "rtmps")
	return filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), true
}
