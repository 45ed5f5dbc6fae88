// Package loadtest puts a Rostrum server (or anything that speaks the
// ivs-realtime API and IVS's media protocol) under load and measures what an
// operator sizing a deployment needs: `rostrum loadtest`.
//
// The media mode (RunMedia) creates stages through the API, publishes
// synthetic video (or a real video file, looped: videofile.go) and audio
// from P publishers per stage and subscribes S subscribers to each of them,
// for a fixed time, then reports the streams forwarded, packets and bitrate
// per subscriber, loss, jitter, the forwarding latency (publisher send →
// subscriber receive, from send times the publishers write into every
// frame, or record by payload for real video), the time from joining to the
// first frame, the server's CPU and memory, and errors. It also compares what each
// subscriber received with what its publisher sent, per stream and over
// time (streams.go): the share received, stalls, and streams that stopped
// or starved, which are errors; and it keeps a time series of packets per
// subscription and the server's memory and CPU, for soaks. The control-plane mode
// (RunAPI) sends concurrent SigV4-signed API calls and reports requests per
// second and latency percentiles.
//
// Everything it starts stops by itself: each phase is bounded in time, and
// the stages it created are deleted at the end. It sends traffic only to the
// endpoint it is given; by default it starts its own server on loopback
// (Spawn).
package loadtest
