package stage

import (
	"context"
	"errors"
	"testing"

	"github.com/pion/rtp"

	"github.com/rostrum-dev/rostrum/internal/sfu"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

var ingestTracks = []sfu.LocalTrack{{Kind: sfu.Audio, Codec: "opus"}, {Kind: sfu.Video, Codec: "H264"}}

// publishLocal starts a local publication of pid and returns it with the
// channel its OnEnded reports to.
func (r *rig) publishLocal(pid string) (*LocalPublication, chan error, error) {
	ended := make(chan error, 1)
	id := LocalIdentity(r.stage, pid, "user-"+pid, map[string]string{"from": "rtmp"})
	lp, err := r.m.PublishLocal(id, ClientInfo{Protocol: "RTMPS"}, ingestTracks, LocalPublishOptions{
		OnEnded: func(err error) { ended <- err },
	})
	return lp, ended, err
}

func TestLocalPublicationJoinsPublishesAndLeaves(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t)
	lp, ended, err := r.publishLocal("ingest")
	if err != nil {
		t.Fatal(err)
	}
	if lp.StageARN() != testStageARN || lp.ParticipantID() != "ingest" || lp.SessionID() == "" || len(lp.Tracks()) != 2 {
		t.Fatalf("publication %s %s %q %v", lp.StageARN(), lp.ParticipantID(), lp.SessionID(), lp.Tracks())
	}
	st := r.m.lookupStage(testStageARN)
	st.mu.Lock()
	p := st.participants["ingest"]
	proto, user, attrs := p.client.Protocol, p.userID, p.attributes["from"]
	st.mu.Unlock()
	if proto != "RTMPS" || user != "user-ingest" || attrs != "rtmp" {
		t.Fatalf("participant protocol %q, user %q, attribute %q", proto, user, attrs)
	}
	// Joined at once, publishing with the first packet.
	r.expectWrites("session started", "ingest CONNECTED", "ingest JOINED")
	if got := r.svc.recorded(); count(got, "ingest PUBLISH_STARTED") != 0 {
		t.Fatalf("publishing before any media: %q", got)
	}
	if err := lp.WriteRTP(1, &rtp.Header{SequenceNumber: 1}, []byte{0x65}); err != nil {
		t.Fatal(err)
	}
	lp.SetSenderReport(0, 1, 2)
	r.expectWrites("ingest JOINED", "ingest PUBLISH_STARTED")

	// A subscriber can subscribe to it like to any publisher.
	r.subscribe("bob", "ingest")

	lp.Close()
	if err := <-ended; err != nil {
		t.Fatalf("OnEnded(%v) after Close, want nil", err)
	}
	r.expectWrites("ingest PUBLISH_STARTED", "ingest PUBLISH_STOPPED", "ingest LEFT")
	if err := lp.WriteRTP(1, &rtp.Header{}, []byte{1}); !errors.Is(err, sfu.ErrClosed) {
		t.Fatalf("WriteRTP after Close: %v", err)
	}
	lp.Close() // twice is harmless
	r.m.Close()
}

func TestLocalPublicationIsKicked(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t)
	lp, ended, err := r.publishLocal("ingest")
	if err != nil {
		t.Fatal(err)
	}
	_ = lp.WriteRTP(0, &rtp.Header{}, []byte{1})
	if err := r.m.DisconnectParticipant(context.Background(), testStageARN, "ingest", "bye"); err != nil {
		t.Fatal(err)
	}
	if err := <-ended; !errors.Is(err, ErrDisconnected) {
		t.Fatalf("OnEnded(%v), want ErrDisconnected", err)
	}
	r.expectWrites("ingest PUBLISH_STARTED", "ingest PUBLISH_STOPPED", "ingest LEFT")
	r.m.Close()
}

func TestLocalPublicationEndsWithItsStage(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t)
	_, ended, err := r.publishLocal("ingest")
	if err != nil {
		t.Fatal(err)
	}
	r.m.StageDeleted(context.Background(), testStageARN)
	if err := <-ended; !errors.Is(err, ErrStageDeleted) {
		t.Fatalf("OnEnded(%v), want ErrStageDeleted", err)
	}
	if _, _, err := r.publishLocal("ingest"); !errors.Is(err, ErrStageDeleted) {
		t.Fatalf("publishing on a deleted stage: %v", err)
	}

	r2 := newRig(t)
	_, ended, err = r2.publishLocal("ingest")
	if err != nil {
		t.Fatal(err)
	}
	r2.m.Close()
	if err := <-ended; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("OnEnded(%v) at shutdown, want ErrUnavailable", err)
	}
}

func TestLocalPublicationQuotaAndRefusals(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t, func(c *Config) { c.MaxPublishers = 1 })
	r.publish("alice")
	if _, _, err := r.publishLocal("ingest"); !errors.Is(err, ErrStageFull) {
		t.Fatalf("a second publisher: %v", err)
	}
	r.expectWrites("ingest PUBLISH_ERROR QUOTA_EXCEEDED")
	if got := r.svc.recorded(); count(got, "ingest JOINED") != 0 {
		t.Fatalf("the refused publication joined: %q", got)
	}

	r2 := newRig(t)
	r2.engine.publishErr = sfu.ErrNoMatchingCodec
	if _, _, err := r2.publishLocal("ingest"); !errors.Is(err, ErrNoMatchingCodec) {
		t.Fatalf("a codec the engine refuses: %v", err)
	}
	r2.expectWrites("ingest JOINED", "ingest PUBLISH_ERROR INVALID_VIDEO_CODEC", "ingest LEFT")
	r.m.Close()
	r2.m.Close()
}
