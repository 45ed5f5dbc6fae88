package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/objstore/objstoretest"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// Individual participant recording (issue 9), end to end: a stage created
// with the AWS SDK records its real publishers (pion, H.264 and Opus from
// ffmpeg test sources) into the local folder storage or an S3 service, in
// IVS's layout; the recordings play in ffprobe and in Chromium with
// hls.js; the API and the EventBridge events say what happened.

// recordingStage creates a storage configuration on bucket and a stage that
// records every publisher: segments of 2 s, a thumbnail a second, both
// sequential and latest.
func recordingStage(t *testing.T, c *ivsrealtime.Client, bucket string, mutate ...func(*types.AutoParticipantRecordingConfiguration)) string {
	t.Helper()
	sc, err := c.CreateStorageConfiguration(bg, &ivsrealtime.CreateStorageConfigurationInput{
		Name: aws.String("recordings"), S3: &types.S3StorageConfiguration{BucketName: aws.String(bucket)},
	})
	if err != nil {
		t.Fatal(err)
	}
	rc := &types.AutoParticipantRecordingConfiguration{
		StorageConfigurationArn: sc.StorageConfiguration.Arn,
		MediaTypes:              []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioVideo},
		ThumbnailConfiguration: &types.ParticipantThumbnailConfiguration{
			RecordingMode:         types.ThumbnailRecordingModeInterval,
			TargetIntervalSeconds: aws.Int32(1),
			Storage:               []types.ThumbnailStorageType{types.ThumbnailStorageTypeSequential, types.ThumbnailStorageTypeLatest},
		},
		HlsConfiguration: &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)},
	}
	for _, m := range mutate {
		m(rc)
	}
	st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{Name: aws.String("recorded"), AutoParticipantRecordingConfiguration: rc})
	if err != nil {
		t.Fatal(err)
	}
	return *st.Stage.Arn
}

// publishFor publishes H.264 and Opus with a fresh token for d, then leaves.
func publishFor(t *testing.T, c *ivsrealtime.Client, stage, user string, d time.Duration) (pid string) {
	t.Helper()
	f := fixtures(t)
	tok, pid := newToken(t, c, stage, user, types.ParticipantTokenCapabilityPublish, types.ParticipantTokenCapabilitySubscribe)
	ctx := testContext(t)
	p := publish(t, ctx, tok, rtclient.PublishOptions{Audio: source(t, f.Opus), Video: source(t, f.H264)})
	time.Sleep(d) // publish for a while: the recording's length
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return pid
}

// participant reads a participant of the stage's only session.
func participant(t *testing.T, c *ivsrealtime.Client, stage, pid string) *types.Participant {
	t.Helper()
	p, err := lookUpParticipant(c, stage, pid)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// lookUpParticipant is the participant in the stage's first session.
func lookUpParticipant(c *ivsrealtime.Client, stage, pid string) (*types.Participant, error) {
	ss, err := c.ListStageSessions(bg, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
	if err != nil {
		return nil, fmt.Errorf("sessions of %s: %v", stage, err)
	}
	if len(ss.StageSessions) == 0 {
		return nil, fmt.Errorf("%s has no session", stage)
	}
	out, err := c.GetParticipant(bg, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: ss.StageSessions[0].SessionId, ParticipantId: aws.String(pid)})
	if err != nil {
		return nil, err
	}
	return out.Participant, nil
}

// awaitRecordingState waits until the participant's recordingState is want.
// The stage writes its session and participants to the store a moment
// after the media moves, so a participant not found yet is waited for too.
func awaitRecordingState(t *testing.T, c *ivsrealtime.Client, stage, pid string, want types.ParticipantRecordingState) *types.Participant {
	t.Helper()
	var p *types.Participant
	var err error
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		p, err = lookUpParticipant(c, stage, pid)
		if err == nil && p.RecordingState == want {
			return p
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("participant %s (waiting for recordingState %q): %v", pid, want, err)
	}
	t.Fatalf("participant %s: recordingState %q, want %q", pid, p.RecordingState, want)
	return nil
}

// recordingDir is the one recording folder under a participant's prefix.
func recordingDir(t *testing.T, bucketDir, prefix string) string {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(bucketDir, prefix, "*"))
	if len(dirs) != 1 {
		t.Fatalf("recordings under %s: %v, want one", prefix, dirs)
	}
	return dirs[0]
}

func TestParticipantRecording(t *testing.T) {
	needTool(t, "ffmpeg")
	hook := newHookReceiver(t)
	data := t.TempDir()
	ts := startServer(t, data, withWebhook(hook.srv.URL, ""))
	c := ts.client()
	stage := recordingStage(t, c, "recordings")

	// Two publishers, one after the other, 6 s each.
	const seconds = 6
	alice := publishFor(t, c, stage, "alice", seconds*time.Second)
	bob := publishFor(t, c, stage, "bob", seconds*time.Second)

	bucket := filepath.Join(data, "storage", "recordings")
	stageID := stage[strings.LastIndex(stage, "/")+1:]
	for _, pid := range []string{alice, bob} {
		p := awaitRecordingState(t, c, stage, pid, types.ParticipantRecordingStateStopped)
		if aws.ToString(p.RecordingS3BucketName) != "recordings" || aws.ToString(p.RecordingS3Prefix) != stageID+"/"+aws.ToString(participantSession(t, c, stage))+"/"+pid {
			t.Fatalf("participant %s: bucket %q prefix %q", pid, aws.ToString(p.RecordingS3BucketName), aws.ToString(p.RecordingS3Prefix))
		}
		dir := recordingDir(t, bucket, aws.ToString(p.RecordingS3Prefix))

		// The media: VOD HLS of the publisher's length, H.264 as sent, AAC.
		pl, err := os.ReadFile(filepath.Join(dir, "media/hls/high/playlist.m3u8"))
		if err != nil || !strings.Contains(string(pl), "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.Contains(string(pl), "#EXT-X-ENDLIST") {
			t.Fatalf("%s playlist (%v):\n%s", pid, err, pl)
		}
		pr := testutil.FFprobe(t, filepath.Join(dir, "media/hls/multivariant.m3u8"))
		if v, w, h := pr.Stream("video"); v != "h264" || w != 640 || h != 360 {
			t.Fatalf("%s video: %s %dx%d", pid, v, w, h)
		}
		if a, _, _ := pr.Stream("audio"); a != "aac" {
			t.Fatalf("%s audio: %s", pid, a)
		}
		dur := pr.Duration()
		if dur < seconds-1.5 || dur > seconds+1 {
			t.Fatalf("%s: recording of %.2f s for %d s of publishing", pid, dur, seconds)
		}

		// Thumbnails: JPEGs of the picture's size, one a second, and the latest.
		thumbs, _ := filepath.Glob(filepath.Join(dir, "media/thumbnails/high/*.jpg"))
		if len(thumbs) < seconds-2 || len(thumbs) > seconds+1 {
			t.Fatalf("%s: %d thumbnails for %d s at one a second", pid, len(thumbs), seconds)
		}
		for _, th := range []string{filepath.Join(dir, "media/thumbnails/high/1.jpg"), filepath.Join(dir, "media/latest_thumbnail/high/thumb.jpg")} {
			if v, w, h := testutil.FFprobe(t, th).Stream("video"); v != "mjpeg" || w != 640 || h != 360 {
				t.Fatalf("%s thumbnail %s: %s %dx%d", pid, th, v, w, h)
			}
		}

		// The event files.
		b, err := os.ReadFile(filepath.Join(dir, "events/recording-ended.json"))
		var raw map[string]any
		if err == nil {
			err = json.Unmarshal(b, &raw)
		}
		if err != nil || raw["version"] != "v1" || raw["stage_arn"] != stage || raw["participant_id"] != pid || raw["recording_status"] != "RECORDING_ENDED" {
			t.Fatalf("%s recording-ended.json (%v): %s", pid, err, b)
		}
		if _, err := os.Stat(filepath.Join(dir, "events/recording-started.json")); err != nil {
			t.Fatal(err)
		}
	}

	// ListParticipants filters by recording state.
	sid := participantSession(t, c, stage)
	stopped, err := c.ListParticipants(bg, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: sid, FilterByRecordingState: types.ParticipantRecordingFilterByRecordingStateStopped})
	if err != nil || len(stopped.Participants) != 2 {
		t.Fatalf("ListParticipants filterByRecordingState STOPPED: %v %d", err, len(stopped.Participants))
	}

	// EventBridge: Recording Start and Recording End (with its duration) for each.
	testutil.Eventually(t, "the recording events", func() bool { return len(recordingEvents(hook.got())) >= 4 })
	for _, pid := range []string{alice, bob} {
		var names []string
		for _, ev := range recordingEvents(hook.got()) {
			var d events.ParticipantRecordingStateChange
			if err := json.Unmarshal(ev.Detail, &d); err != nil {
				t.Fatal(err)
			}
			if d.ParticipantID != pid {
				continue
			}
			names = append(names, d.EventName)
			if ev.Resources[0] != stage || d.RecordingS3BucketName != "recordings" || !strings.HasPrefix(d.RecordingS3KeyPrefix, stageID+"/"+aws.ToString(sid)+"/"+pid+"/") {
				t.Fatalf("%s event %+v %+v", pid, ev, d)
			}
			if d.EventName == events.RecordingEnd && (d.RecordingDurationMs == nil || *d.RecordingDurationMs < (seconds-2)*1000) {
				t.Fatalf("%s Recording End without its duration: %+v", pid, d)
			}
		}
		if strings.Join(names, ",") != "Recording Start,Recording End" {
			t.Fatalf("%s recording events %v", pid, names)
		}
	}

	// The recording plays in Chromium with hls.js.
	p := participant(t, c, stage, alice)
	runNodeTestsEnv(t, ts, []string{
		"ROSTRUM_RECORDING_DIR=" + recordingDir(t, bucket, aws.ToString(p.RecordingS3Prefix)),
		"ROSTRUM_RECORDING_WIDTH=640", "ROSTRUM_RECORDING_HEIGHT=360",
	}, "recording.test.mjs")
}

// A stage that does not record says so on its participants.
func TestParticipantsOfAStageThatDoesNotRecord(t *testing.T) {
	ts := startServer(t, "")
	c := ts.client()
	stage := newStage(t, c)
	tok, pid := newToken(t, c, stage, "carol")
	joinEvents(t, testContext(t), tok)
	testutil.Eventually(t, "carol on the stage", func() bool {
		ss, err := c.ListStageSessions(bg, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
		return err == nil && len(ss.StageSessions) > 0
	})
	var p *types.Participant
	testutil.Eventually(t, "carol recorded", func() bool {
		ss, _ := c.ListStageSessions(bg, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
		out, err := c.GetParticipant(bg, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: ss.StageSessions[0].SessionId, ParticipantId: aws.String(pid)})
		if err == nil {
			p = out.Participant
		}
		return err == nil
	})
	if p.RecordingState != types.ParticipantRecordingStateDisabled || aws.ToString(p.RecordingS3BucketName) != "" || aws.ToString(p.RecordingS3Prefix) != "" {
		t.Fatalf("participant of a stage that does not record: %q %q %q", p.RecordingState, aws.ToString(p.RecordingS3BucketName), aws.ToString(p.RecordingS3Prefix))
	}
}

// On an S3 service whose bucket does not exist, the recording fails with
// the reason, and the stage goes on.
func TestRecordingToAMissingBucketFails(t *testing.T) {
	needTool(t, "ffmpeg")
	g := objstoretest.StartVersityGW(t)
	hook := newHookReceiver(t)
	ts := startServer(t, "", withWebhook(hook.srv.URL, ""), func(c *config.Config) {
		c.Storage.S3Endpoint, c.Storage.S3Region = g.Endpoint, g.Region
		c.Storage.S3AccessKeyID, c.Storage.S3SecretAccessKey, c.Storage.S3ForcePathStyle = g.AccessKeyID, g.SecretAccessKey, true
	})
	c := ts.client()
	stage := recordingStage(t, c, "no-such-bucket")
	pid := publishFor(t, c, stage, "dave", 2*time.Second)
	awaitRecordingState(t, c, stage, pid, types.ParticipantRecordingStateFailed)
	testutil.Eventually(t, "Recording Start Failure", func() bool {
		for _, ev := range recordingEvents(hook.got()) {
			var d events.ParticipantRecordingStateChange
			if json.Unmarshal(ev.Detail, &d) == nil && d.ParticipantID == pid && d.EventName == events.RecordingStartFailure {
				if !strings.Contains(d.RecordingStatusReason, "no-such-bucket") {
					t.Fatalf("failure reason %q does not name the bucket", d.RecordingStatusReason)
				}
				return true
			}
		}
		return false
	})
	// The stage carries on: another participant publishes.
	tok, _ := newToken(t, c, stage, "erin", types.ParticipantTokenCapabilityPublish)
	f := fixtures(t)
	publish(t, testContext(t), tok, rtclient.PublishOptions{Audio: source(t, f.Opus)})
}

func participantSession(t *testing.T, c *ivsrealtime.Client, stage string) *string {
	t.Helper()
	ss, err := c.ListStageSessions(bg, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
	if err != nil || len(ss.StageSessions) == 0 {
		t.Fatalf("sessions: %v", err)
	}
	return ss.StageSessions[0].SessionId
}

func recordingEvents(all []*events.Event) []*events.Event {
	var out []*events.Event
	for _, ev := range all {
		if ev.DetailType == events.DetailTypeRecordingChange {
			out = append(out, ev)
		}
	}
	return out
}

// A server stopped with SIGTERM finishes its open recordings (VOD
// playlists, recording-ended.json, STOPPED); one killed with SIGKILL leaves
// them half-written, and its next start closes them (VOD playlists with
// what was written, recording-failed.json, FAILED): nothing stays open.
func TestRecordingsAcrossSIGTERMAndSIGKILL(t *testing.T) {
	needTool(t, "ffmpeg")
	dir := t.TempDir()
	bin := buildRostrum(t, dir)
	data := filepath.Join(dir, "data")
	bucket := filepath.Join(data, "storage", "recordings")
	f := fixtures(t)

	// recordUntil starts a server, has a participant publish until the
	// recording has its first segments, and stops the server with sig.
	recordUntil := func(sig syscall.Signal, stage string) (string, string, string) {
		srv := runServe(t, bin, "--data-dir", data)
		c := srv.client()
		if stage == "" {
			stage = recordingStage(t, c, "recordings")
		}
		tok, pid := newToken(t, c, stage, "frank", types.ParticipantTokenCapabilityPublish)
		ctx := testContext(t)
		pub, err := rtclient.Publish(ctx, tok, rtclient.PublishOptions{Audio: source(t, f.Opus), Video: source(t, f.H264), LoopbackOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close(context.Background())
		var sid string
		testutil.Eventually(t, "the recording under way", func() bool {
			st, err := c.GetStage(bg, &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
			if err != nil || st.Stage.ActiveSessionId == nil {
				return false
			}
			sid = *st.Stage.ActiveSessionId
			out, err := c.GetParticipant(bg, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: aws.String(sid), ParticipantId: aws.String(pid)})
			if err != nil || out.Participant.RecordingState != types.ParticipantRecordingStateActive {
				return false
			}
			segs, _ := filepath.Glob(filepath.Join(bucket, aws.ToString(out.Participant.RecordingS3Prefix), "*", "media/hls/high/2.mp4"))
			return len(segs) == 1
		})
		srv.signal(t, sig)
		return stage, sid, pid
	}
	// afterRestart reads the participant's recording once a server runs
	// again on the data dir.
	afterRestart := func(stage, sid, pid string, want types.ParticipantRecordingState) (*types.Participant, string) {
		srv := runServe(t, bin, "--data-dir", data)
		c := srv.client()
		var p *types.Participant
		testutil.Eventually(t, "recordingState "+string(want), func() bool {
			out, err := c.GetParticipant(bg, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: aws.String(sid), ParticipantId: aws.String(pid)})
			if err == nil {
				p = out.Participant
			}
			return err == nil && p.RecordingState == want
		})
		dir := recordingDir(t, bucket, aws.ToString(p.RecordingS3Prefix))
		pl, err := os.ReadFile(filepath.Join(dir, "media/hls/high/playlist.m3u8"))
		if err != nil || !strings.Contains(string(pl), "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.Contains(string(pl), "#EXT-X-ENDLIST") {
			t.Fatalf("playlist left open (%v):\n%s", err, pl)
		}
		if v, _, _ := testutil.FFprobe(t, filepath.Join(dir, "media/hls/multivariant.m3u8")).Stream("video"); v != "h264" {
			mv, _ := os.ReadFile(filepath.Join(dir, "media/hls/multivariant.m3u8"))
			t.Fatalf("the recording does not play (video %q):\n%s\n%s", v, mv, pl)
		}
		srv.signal(t, syscall.SIGTERM)
		return p, dir
	}

	stage, sid, pid := recordUntil(syscall.SIGTERM, "")
	_, rec := afterRestart(stage, sid, pid, types.ParticipantRecordingStateStopped)
	if _, err := os.Stat(filepath.Join(rec, "events/recording-ended.json")); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}

	stage, sid, pid = recordUntil(syscall.SIGKILL, stage)
	// What the killed server left, for the log of a failure.
	states, _ := filepath.Glob(filepath.Join(data, "recording-spool", "*", "*", "*", "*", "state.json"))
	for _, sp := range states {
		b, _ := os.ReadFile(sp)
		files, _ := filepath.Glob(filepath.Join(filepath.Dir(sp), "run-*", "*", "*"))
		pl, _ := os.ReadFile(filepath.Join(filepath.Dir(sp), "run-0", "hls", "playlist.m3u8"))
		t.Logf("left in the spool: %s\n%s\nfiles %v\nffmpeg's playlist:\n%s", sp, b, files, pl)
	}
	_, rec = afterRestart(stage, sid, pid, types.ParticipantRecordingStateFailed)
	b, err := os.ReadFile(filepath.Join(rec, "events/recording-failed.json"))
	if err != nil || !strings.Contains(string(b), "RECORDING_ENDED_WITH_FAILURE") {
		t.Fatalf("SIGKILL: recording-failed.json (%v): %s", err, b)
	}
	if left, _ := filepath.Glob(filepath.Join(data, "recording-spool", "*", "*", "*", "*", "state.json")); len(left) != 0 {
		t.Fatalf("recordings left in the spool: %v", left)
	}
}
