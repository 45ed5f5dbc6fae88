package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/stage"
)

// Media registers the media plane's metrics, read from the stage layer's
// and the forwarding engine's snapshots on each scrape.
func (r *Registry) Media(stages func() stage.Stats, engine func() sfu.Stats) {
	r.reg.MustRegister(&mediaCollector{stages: stages, engine: engine})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
}

var (
	stagesDesc       = desc("stages", "Stages with live state on this server.")
	sessionsDesc     = desc("stage_sessions", "Stage sessions running on this server (in their grace period included).")
	participantsDesc = desc("participants", "Participants connected to a stage on this server.")
	publishersDesc   = desc("media_publishers", "Publishing peer connections.")
	subscribersDesc  = desc("media_subscribers", "Subscribing peer connections (one per subscriber and publisher).")
	leanDesc         = desc("media_lean_subscribers", "Of media_subscribers, those on the engine's own lean connections (ICE-lite, no pion peer connection: --rtc-lean-subscribers).")
	recvPacketsDesc  = desc("media_received_packets_total", "RTP packets received from publishers.")
	recvBytesDesc    = desc("media_received_bytes_total", "RTP bytes (header and payload) received from publishers.")
	fwdPacketsDesc   = desc("media_forwarded_packets_total", "RTP packets sent to subscribers, retransmissions included.")
	fwdBytesDesc     = desc("media_forwarded_bytes_total", "RTP bytes (header and payload) sent to subscribers, retransmissions included.")
	nacksDesc        = desc("media_nacks_total", "Packets NACKed: by the server to publishers (direction=upstream), by subscribers to the server (direction=downstream).", "direction")
	keyframesDesc    = desc("media_keyframe_requests_total", "Keyframe requests (PLI, FIR): sent to publishers (direction=upstream), received from subscribers (direction=downstream).", "direction")
	lossDesc         = desc("media_loss_fraction", "Fraction of packets lost, per RTCP receiver report block: reports the server sends publishers (direction=upstream) and subscribers send the server (direction=downstream).", "direction")
	joinDesc         = desc("media_join_seconds", "Time from a publish or subscribe offer to its peer connection being up (ICE and DTLS done, media can flow).", "kind")
	fwdDelayDesc     = desc("media_forward_delay_seconds", "Per packet received from a publisher, time from the server reading it to its last subscriber's send: the server's own share of media latency.")
)

type mediaCollector struct {
	stages func() stage.Stats
	engine func() sfu.Stats
}

func (c *mediaCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{stagesDesc, sessionsDesc, participantsDesc, publishersDesc, subscribersDesc, leanDesc,
		recvPacketsDesc, recvBytesDesc, fwdPacketsDesc, fwdBytesDesc, nacksDesc, keyframesDesc, lossDesc, joinDesc, fwdDelayDesc} {
		ch <- d
	}
}

func (c *mediaCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stages()
	e := c.engine()
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(stagesDesc, st.Stages)
	gauge(sessionsDesc, st.Sessions)
	gauge(participantsDesc, st.Participants)
	gauge(publishersDesc, e.Publishers)
	gauge(subscribersDesc, e.Subscribers)
	gauge(leanDesc, e.LeanSubscribers)
	counter(recvPacketsDesc, e.ReceivedPackets)
	counter(recvBytesDesc, e.ReceivedBytes)
	counter(fwdPacketsDesc, e.ForwardedPackets)
	counter(fwdBytesDesc, e.ForwardedBytes)
	counter(nacksDesc, e.NACKsSent, "upstream")
	counter(nacksDesc, e.NACKsReceived, "downstream")
	counter(keyframesDesc, e.KeyframeRequestsSent, "upstream")
	counter(keyframesDesc, e.KeyframeRequestsReceived, "downstream")
	histogram(ch, lossDesc, e.UpstreamLoss, "upstream")
	histogram(ch, lossDesc, e.DownstreamLoss, "downstream")
	histogram(ch, joinDesc, e.PublishJoin, "publish")
	histogram(ch, joinDesc, e.SubscribeJoin, "subscribe")
	histogram(ch, fwdDelayDesc, e.ForwardDelay)
}

// histogram sends an sfu histogram snapshot as a Prometheus histogram
// (whose buckets are cumulative).
func histogram(ch chan<- prometheus.Metric, d *prometheus.Desc, h sfu.Histogram, labels ...string) {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var cum uint64
	for i, le := range h.Bounds {
		cum += h.Counts[i]
		buckets[le] = cum
	}
	ch <- prometheus.MustNewConstHistogram(d, h.Count, h.Sum, buckets, labels...)
}
