package config

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/rostrum-dev/rostrum/internal/ivs"
)

// Compositions configures server-side composition. The flag name
// --channel is a contract (scripts outside the project use it).
type Compositions struct {
	// ChannelFlags are the --channel ARN=URL values as given.
	ChannelFlags stringList
	// Channels maps a channel ARN to the rtmp:// or rtmps:// URL (stream
	// key included) a composition's channel destination publishes to; set
	// by validation from ChannelFlags.
	Channels map[string]string
	// IdleTimeout: a composition stops this long after its last publisher
	// left, or after its start if nobody published (IVS: 60 s, fixed).
	IdleTimeout time.Duration
	// ReconnectWindow: a broken RTMP destination is retried this long
	// before it fails.
	ReconnectWindow time.Duration
}

var channelARNRE = regexp.MustCompile(`^arn:aws:ivs:[a-z0-9-]+:[0-9]+:channel/[a-zA-Z0-9-]+$`)

func (c *Config) compositionFlagDefs(fs *flag.FlagSet) {
	fs.Var(&c.Compositions.ChannelFlags, "channel", "`ARN=URL`: a composition's channel destination with channel ARN publishes to URL, an rtmp:// or rtmps:// URL with the stream key (rtmps://host/app/streamkey); repeatable (in ROSTRUM_CHANNEL, one per line). Rostrum has no IVS channels: an ARN not mapped here is refused by StartComposition")
	fs.DurationVar(&c.Compositions.IdleTimeout, "composition-idle-timeout", time.Minute, "a composition stops this long after its last publisher left, or after its start if nobody published (IVS's rule: 1m, not adjustable there)")
	fs.DurationVar(&c.Compositions.ReconnectWindow, "composition-reconnect-window", time.Minute, "how long a composition retries a broken RTMP(S) destination (RECONNECTING) before the destination fails")
	fs.IntVar(&c.Quotas.Compositions, "quota-compositions", ivs.DefaultQuotas.Compositions, "compositions running at once per account (0 = unlimited)")
	fs.IntVar(&c.Quotas.CompositionsPerStage, "quota-compositions-per-stage", ivs.DefaultQuotas.CompositionsPerStage, "compositions running at once per stage (0 = unlimited)")
}

func (c *Config) validateCompositions() error {
	var errs []error
	if c.Compositions.IdleTimeout <= 0 {
		errs = append(errs, errors.New("--composition-idle-timeout: must be positive"))
	}
	if c.Compositions.ReconnectWindow <= 0 {
		errs = append(errs, errors.New("--composition-reconnect-window: must be positive"))
	}
	c.Compositions.Channels = map[string]string{}
	for _, v := range c.Compositions.ChannelFlags.vals {
		arn, u, ok := strings.Cut(v, "=")
		if !ok {
			errs = append(errs, fmt.Errorf("--channel %q: must be ARN=URL, e.g. arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234=rtmps://host/app/streamkey", v))
			continue
		}
		if !channelARNRE.MatchString(arn) {
			errs = append(errs, fmt.Errorf("--channel %q: %q is not a channel ARN (arn:aws:ivs:<region>:<account>:channel/<id>)", v, arn))
			continue
		}
		if err := ivs.CheckChannelURL(u); err != nil {
			errs = append(errs, fmt.Errorf("--channel %s: URL %q: %v", arn, u, err))
			continue
		}
		if prev, dup := c.Compositions.Channels[arn]; dup && prev != u {
			errs = append(errs, fmt.Errorf("--channel %s: given twice, with different URLs", arn))
			continue
		}
		c.Compositions.Channels[arn] = u
	}
	if c.Quotas.Compositions < 0 || c.Quotas.CompositionsPerStage < 0 {
		errs = append(errs, errors.New("--quota-compositions and --quota-compositions-per-stage must not be negative"))
	}
	return errors.Join(errs...)
}
