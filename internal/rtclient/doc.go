// Package rtclient is a client of the media protocol that Amazon IVS
// Real-Time's own clients speak, and that Rostrum serves: WHIP publish and
// WHEP-style subscribe over HTTP (POST {whip_url}/publish/{participantId},
// POST {whip_url}/subscribe/{publisherId}, DELETE of the resource, the layer
// and playback-control links) and the events websocket (the participant token
// as the subprotocol, STAGE_STATE snapshots, PING/PONG, SET_STATE).
//
// It is used by Rostrum's integration tests and by its load generator, so the
// library itself has no test-only shortcuts: everything a test needs to look
// at (hashes of the frames sent and received, packet and NACK counters, the
// Drop hook) is a documented part of the API, and everything that costs per
// frame or per packet can be turned off (PublishOptions.DisableFrameHashes,
// SubscribeOptions.NoFrames).
//
// The pieces:
//
//   - ParseToken reads (without verifying) the claims of a participant token.
//   - Publish sends MediaSources (FileSource: real encoded media read with
//     pion's readers; SyntheticSource: numbered frames made on the fly) and
//     records the SHA-256 of every frame it sends (SentFrames). It counts
//     every RTP packet as it leaves (SendStats.Packets, with sequence
//     numbers and timestamps unwrapped to 64 bits), so that a receiver can
//     tell packets that never came; PublishOptions.FirstSequenceNumber and
//     FirstTimestamp start a stream just below the 16-bit and 32-bit wraps.
//   - Subscribe receives a publisher's media, rebuilds frames with pion's
//     sample builder and records the SHA-256 of every frame (ReceivedFrames),
//     so a test can check that what arrived is what was sent (FrameHash
//     defines the hash both sides use). Sequence numbers are unwrapped to 64
//     bits before anything compares them (counters, NACKs), and a stream
//     that jumps 32,768 or more ahead is followed, not taken for old packets.
//   - For load generation: SyntheticOptions.Timestamps writes each frame's
//     send time into it, SubscribeOptions.OnPacket sees every packet, and
//     SyntheticPacketSent reads the send time back out of one, so that
//     forwarding latency is measured per packet (internal/loadtest).
//   - ConnectEvents joins the events websocket.
//   - GenerateFixtures makes small test media files with ffmpeg.
//
// Behaviour that mirrors IVS follows shared/design/IVS-BEHAVIOUR.md §1–§3.
package rtclient
