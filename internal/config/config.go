// Package config reads rostrum serve's settings from flags and ROSTRUM_*
// environment variables. Every default is chosen for the one-machine
// embedded mode: `rostrum serve` with no flags just works.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/rostrum-dev/rostrum/internal/ivs"
	"github.com/rostrum-dev/rostrum/internal/token"
)

// The development credential pair, accepted unless others are configured.
// It is printed at start; never use it on a reachable network.
const (
	DevAccessKeyID     = "AKIAROSTRUMDEV000001"
	DevSecretAccessKey = "rostrum-dev-secret-access-key-do-not-use-in-production"
)

// Config is everything `rostrum serve` can be told.
type Config struct {
	Listen          string
	DataDir         string
	Region          string
	AccountID       string
	AccessKeyID     string
	SecretAccessKey string
	PublicURL       string
	LogLevel        string
	LogFormat       string
	Quotas          ivs.Quotas
	// SelfSignedTokenMaxLifetime bounds exp − iat of participant tokens
	// signed with an imported public key (internal/token.Limits).
	SelfSignedTokenMaxLifetime time.Duration

	// Media plane.
	RTCUDPPort       int
	RTCTCPPort       int
	RTCFanoutWorkers int
	RTCDirectSend    bool
	RTCBatchSends    bool
	RTCLean          bool
	RTCListenIP      string
	RTCPublicIPs     string // comma-separated
	SessionGrace     time.Duration
	MaxPublishers    int
	MaxSubscribers   int
	// ParticipantConnectRate and ParticipantConnectBurst limit how fast one
	// participant opens media connections (internal/stage).
	ParticipantConnectRate  float64
	ParticipantConnectBurst int

	// Event sinks: webhooks, EventBridge, the live stream (events.go).
	Events Events

	// RTMP(S) ingest listeners (ingest.go).
	Ingest Ingest

	// Object storage of recordings: a local folder or S3 (storage.go).
	Storage Storage

	// HTTP limits and the metrics listener (http.go).
	HTTP HTTP

	// Crash recovery and retention (nodes.go).
	Node      Node
	Retention Retention

	// Server-side composition: --channel (compositions.go).
	Compositions Compositions
	// Several nodes on one database (cluster.go).
	Cluster Cluster

	// DatabaseURL, when set, is the PostgreSQL database that holds the
	// state instead of SQLite in DataDir (database.go).
	DatabaseURL string

	// DevTokenEndpoint serves /dev/stages and /dev/tokens, which create
	// stages and participant tokens without credentials, for the demo page.
	DevTokenEndpoint bool
}

// flagDefs registers every flag on fs, bound to c, with its default.
func (c *Config) flagDefs(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:8080", "address for HTTP: the AWS API, media endpoints, /healthz and /readyz")
	fs.StringVar(&c.DataDir, "data-dir", "rostrum-data", "directory for the embedded database and local recordings")
	fs.StringVar(&c.Region, "region", "us-east-1", "AWS region this server answers as (in ARNs and SigV4 scopes)")
	fs.StringVar(&c.AccountID, "account-id", "123456789012", "12-digit AWS account id in ARNs, owner of the credential pair")
	fs.StringVar(&c.AccessKeyID, "access-key-id", DevAccessKeyID, "access key id the API accepts (SigV4)")
	fs.StringVar(&c.SecretAccessKey, "secret-access-key", DevSecretAccessKey, "secret access key paired with --access-key-id")
	fs.StringVar(&c.PublicURL, "public-url", "", "base URL clients reach this server at, for stage endpoints and token URLs (default: http://<listen address>)")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json")
	fs.IntVar(&c.Quotas.Stages, "quota-stages", ivs.DefaultQuotas.Stages, "stages per account (0 = unlimited)")
	fs.IntVar(&c.Quotas.EncoderConfigurations, "quota-encoder-configurations", ivs.DefaultQuotas.EncoderConfigurations, "encoder configurations per account")
	fs.IntVar(&c.Quotas.StorageConfigurations, "quota-storage-configurations", ivs.DefaultQuotas.StorageConfigurations, "storage configurations per account")
	fs.IntVar(&c.Quotas.IngestConfigurations, "quota-ingest-configurations", ivs.DefaultQuotas.IngestConfigurations, "ingest configurations per account")
	fs.IntVar(&c.Quotas.PublicKeys, "quota-public-keys", ivs.DefaultQuotas.PublicKeys, "public keys per account")
	fs.IntVar(&c.Quotas.TagsPerResource, "quota-tags-per-resource", ivs.DefaultQuotas.TagsPerResource, "tags per resource")
	fs.DurationVar(&c.SelfSignedTokenMaxLifetime, "self-signed-token-max-lifetime", token.DefaultMaxLifetime, "longest lifetime (exp - iat) of a participant token signed with an imported public key; longer ones are refused (default: 14 days, the longest token CreateParticipantToken mints)")
	fs.IntVar(&c.RTCUDPPort, "rtc-udp-port", 7882, "the one UDP port of all WebRTC media (ICE over UDP); 0 picks a free port")
	fs.IntVar(&c.RTCTCPPort, "rtc-tcp-port", 7881, "the one TCP port for WebRTC media over TCP (ICE-TCP) for clients without UDP; 0 picks a free port, -1 disables")
	fs.StringVar(&c.RTCListenIP, "rtc-listen-ip", "", "address the media ports bind to (default: the host of --listen, so 127.0.0.1 unless --listen says otherwise; all interfaces when --rtc-public-ip is set or --public-url names another host)")
	fs.IntVar(&c.RTCFanoutWorkers, "rtc-fanout-workers", 0, "goroutines that help send one packet to many subscribers (from 32 up) on several cores; 0 = one fewer than the CPUs Go uses, -1 = none (each publisher's track fans out on one core)")
	fs.BoolVar(&c.RTCDirectSend, "rtc-direct-send", true, "send subscribers' media with the engine's own SRTP and socket writes where it can (connections over UDP); false sends everything through pion's layers, as before (for comparison)")
	fs.BoolVar(&c.RTCLean, "rtc-lean-subscribers", true, "run subscribers on the engine's own ICE-lite, DTLS and SRTP instead of a full pion peer connection where their offers allow (bundled media; a simulcast publisher's subscribers need transport-wide feedback): a fraction of the memory and no goroutine per subscriber; false uses pion's for every subscriber")
	fs.BoolVar(&c.RTCBatchSends, "rtc-batch-sends", true, "on the direct send path, send each subscriber the packets a publisher's burst queued up with one system call (UDP segmentation offload); false sends them one by one (for comparison)")
	fs.StringVar(&c.RTCPublicIPs, "rtc-public-ip", "", "comma-separated IPs to advertise as media candidates, for hosts behind 1:1 NAT (default: the interface addresses)")
	fs.DurationVar(&c.SessionGrace, "session-grace", 10*time.Second, "how long a stage session outlives its last participant, so that reconnects stay in one session")
	fs.IntVar(&c.MaxPublishers, "max-publishers", 12, "publishers per stage (IVS: 12)")
	fs.IntVar(&c.MaxSubscribers, "max-subscribers", 10000, "subscribing participants per stage (IVS default: 10,000)")
	fs.Float64Var(&c.ParticipantConnectRate, "participant-connect-rate", 2, "media connections (events channel, publish, subscribe) one participant may open per second after its burst; 0 = no limit")
	fs.IntVar(&c.ParticipantConnectBurst, "participant-connect-burst", 30, "media connections one participant may open at once before --participant-connect-rate applies")
	c.eventFlagDefs(fs)
	c.ingestFlagDefs(fs)
	c.storageFlagDefs(fs)
	c.httpFlagDefs(fs)
	c.nodeFlagDefs(fs)
	c.databaseFlagDefs(fs)
	c.compositionFlagDefs(fs)
	c.clusterFlagDefs(fs)
	fs.BoolVar(&c.DevTokenEndpoint, "dev-token-endpoint", false, "DEVELOPMENT ONLY: serve /dev/stages and /dev/tokens, which create stages and participant tokens without credentials, so that the demo page at /demo/ can mint its own tokens")
}

// EnvName is the environment variable of a flag: ROSTRUM_ and the flag name
// in upper case with dashes as underscores.
func EnvName(flagName string) string {
	return "ROSTRUM_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse reads args (without the command name) over the environment, which
// is read through getenv; flags win over environment variables.
func Parse(args []string, getenv func(string) string, usage io.Writer) (*Config, error) {
	c := &Config{}
	fs := flag.NewFlagSet("rostrum serve", flag.ContinueOnError)
	fs.SetOutput(usage)
	c.flagDefs(fs)
	fs.Usage = func() {
		fmt.Fprintf(usage, "Usage: rostrum serve [flags]\n\nRuns the IVS Real-Time compatible server. Every flag can also be set as an\nenvironment variable ROSTRUM_<NAME> (upper case, dashes as underscores),\ne.g. ROSTRUM_LISTEN=:8080. Flags win over the environment.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(EnvName(f.Name)); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %v", EnvName(f.Name), v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	markEnvironment(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return c, c.validate()
}

var (
	regionRE  = regexp.MustCompile(`^[a-z0-9-]+$`)
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
)

func (c *Config) validate() error {
	var errs []error
	if !regionRE.MatchString(c.Region) {
		errs = append(errs, fmt.Errorf("--region %q: must be lower-case letters, digits and dashes", c.Region))
	}
	if !accountRE.MatchString(c.AccountID) {
		errs = append(errs, fmt.Errorf("--account-id %q: must be 12 digits", c.AccountID))
	}
	if c.AccessKeyID == "" || c.SecretAccessKey == "" {
		errs = append(errs, errors.New("--access-key-id and --secret-access-key must not be empty"))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("--listen %q: %v", c.Listen, err))
	}
	if c.PublicURL != "" {
		u, err := url.Parse(c.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--public-url %q: must be an absolute http or https URL", c.PublicURL))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: must be debug, info, warn or error", c.LogLevel))
	}
	if c.RTCFanoutWorkers < -1 || c.RTCFanoutWorkers > 1024 {
		errs = append(errs, fmt.Errorf("--rtc-fanout-workers %d: must be -1 (none), 0 (one fewer than the CPUs) or up to 1024", c.RTCFanoutWorkers))
	}
	for _, ip := range c.PublicIPs() {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("--rtc-public-ip %q: not an IP address", ip))
		}
	}
	if c.RTCListenIP != "" && net.ParseIP(c.RTCListenIP) == nil {
		errs = append(errs, fmt.Errorf("--rtc-listen-ip %q: not an IP address", c.RTCListenIP))
	}
	if c.SessionGrace < 0 {
		errs = append(errs, fmt.Errorf("--session-grace %v: must not be negative", c.SessionGrace))
	}
	if c.ParticipantConnectRate < 0 || c.ParticipantConnectBurst < 1 {
		errs = append(errs, fmt.Errorf("--participant-connect-rate %v, --participant-connect-burst %d: the rate must not be negative and the burst must be at least 1", c.ParticipantConnectRate, c.ParticipantConnectBurst))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: must be text or json", c.LogFormat))
	}
	if c.SelfSignedTokenMaxLifetime < time.Second {
		errs = append(errs, fmt.Errorf("--self-signed-token-max-lifetime %v: must be at least 1s", c.SelfSignedTokenMaxLifetime))
	}
	if err := c.validateEvents(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateIngest(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateStorage(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateHTTP(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateNode(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateDatabase(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateCompositions(); err != nil {
		errs = append(errs, err)
	}
	if err := c.validateCluster(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// PublicIPs are the --rtc-public-ip addresses.
func (c *Config) PublicIPs() []string {
	var ips []string
	for _, ip := range strings.Split(c.RTCPublicIPs, ",") {
		if ip = strings.TrimSpace(ip); ip != "" {
			ips = append(ips, ip)
		}
	}
	return ips
}

// BaseURL is the public base URL, derived from the bound address when
// --public-url is not set (an unspecified host becomes 127.0.0.1).
func (c *Config) BaseURL(bound net.Addr) string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	host, port, _ := net.SplitHostPort(bound.String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
