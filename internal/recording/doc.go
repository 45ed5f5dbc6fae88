// Package recording records stage participants as IVS does: each
// publishing participant's media becomes HLS (fMP4 segments) and JPEG
// thumbnails in object storage, under IVS's key layout, with the JSON
// event files IVS writes beside them.
//
// # The media toolkit: ffmpeg
//
// A recording reads a publisher through an in-process tap of the
// forwarding engine (sfu.Tap) and hands the RTP, unchanged, to one ffmpeg
// process per publisher connection over loopback UDP, described by an SDP
// file, with RTCP sender reports carrying the publisher's own clock
// mapping so that ffmpeg lines audio and video up as the publisher meant.
// ffmpeg was chosen over GStreamer and over Go muxers because:
//   - it is in Debian and on every machine that runs media tooling, and
//     ffprobe (which the tests use to check recordings) comes with it;
//   - its RTP demuxer depacketizes H.264, VP8 and Opus and its HLS muxer
//     writes fMP4 segments, so H.264 is remuxed without decoding (the cheap
//     path every IVS client takes);
//   - what must be converted is converted by the same process: VP8 has no
//     place in fMP4 HLS that common players read, so it is encoded to
//     H.264 (libx264); Opus is encoded to AAC-LC, which every HLS player
//     (hls.js, Safari, ExoPlayer, ffplay) plays, where Opus in fMP4 is not
//     universal;
//   - thumbnails decode keyframes only on the remux path (-skip_frame
//     nokey), which costs little.
//
// No Go library kept by others muxes fMP4 HLS from RTP with transcoding
// where needed; writing one would be a project of its own.
//
// # Layout
//
// Bucket keys follow IVS's individual participant recording
// (IVS-BEHAVIOUR.md §6.4):
//
//	<stageId>/<sessionId>/<participantId>/<2024-01-01T12-00-55Z>/
//	   events/recording-started.json | recording-ended.json | recording-failed.json
//	   media/hls/multivariant.m3u8
//	   media/hls/high/playlist.m3u8, init-0.mp4, 1.mp4, 2.mp4 …
//	   media/thumbnails/high/1.jpg, 2.jpg …
//	   media/latest_thumbnail/high/thumb.jpg
//
// A publisher who reconnects within the stage's reconnect window continues
// the same recording: the same prefix, segment and thumbnail numbers go
// on, and the playlist marks the join with EXT-X-DISCONTINUITY and the new
// connection's initialization segment (init-1.mp4, …).
//
// ffmpeg writes into a spool folder under the data directory; the
// recording uploads what ffmpeg has finished (segments listed in its
// playlist, thumbnails written atomically) and then its own playlist,
// EVENT while recording and VOD when done. The spool folder holds a small
// state file, so that after a crash the next start finishes what was left.
package recording
