package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/rostrum-dev/rostrum/internal/config"
	"github.com/rostrum-dev/rostrum/internal/rtclient"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// RTMP(S) ingest, driven by a real encoder (ffmpeg pushing FLV) and read by
// real WebRTC subscribers.

// needFFmpeg skips outside CI when ffmpeg is missing (CI must have it).
func needFFmpeg(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		if ciRun() {
			t.Fatal("ffmpeg is needed for the ingest tests")
		}
		t.Skip("ffmpeg is needed for the ingest tests")
	}
}

func ciRun() bool { return os.Getenv("CI") != "" }

// newIngest creates an ingest configuration on stage.
func newIngest(t *testing.T, c *ivsrealtime.Client, stage string, proto types.IngestProtocol, insecure bool) *types.IngestConfiguration {
	t.Helper()
	out, err := c.CreateIngestConfiguration(bg, &ivsrealtime.CreateIngestConfigurationInput{
		IngestProtocol: proto, InsecureIngest: insecure, StageArn: aws.String(stage),
		UserId: aws.String("encoder-1"), Attributes: map[string]string{"source": "obs"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out.IngestConfiguration
}

// encoder is one ffmpeg pushing a test source.
type encoder struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	mu   sync.Mutex
	done chan struct{}
	err  error
}

// encoderArgs are a live H.264 Baseline + AAC test source, as IVS asks
// encoders to send it (2 s GOP, no B-frames); extra replaces defaults by
// appearing later on the command line.
func encoderArgs(size string, extra ...string) []string {
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=30",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-c:v", "libx264", "-profile:v", "baseline", "-preset", "ultrafast", "-tune", "zerolatency",
		"-g", "60", "-pix_fmt", "yuv420p", "-b:v", "1M",
		"-c:a", "aac", "-b:a", "96k", "-ac", "2"}
	return append(args, extra...)
}

// push starts ffmpeg pushing to url; it is stopped when the test ends.
func push(t *testing.T, url string, args []string) *encoder {
	t.Helper()
	args = append(append([]string(nil), args...), "-f", "flv", url)
	e := &encoder{cmd: exec.Command("ffmpeg", args...), done: make(chan struct{})}
	e.cmd.Stdout, e.cmd.Stderr = &lockedBuf{e: e}, &lockedBuf{e: e}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		e.err = e.cmd.Wait()
		close(e.done)
	}()
	t.Cleanup(e.stop)
	return e
}

type lockedBuf struct{ e *encoder }

func (b *lockedBuf) Write(p []byte) (int, error) {
	b.e.mu.Lock()
	defer b.e.mu.Unlock()
	return b.e.out.Write(p)
}

func (e *encoder) output() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.out.String()
}

// stop ends ffmpeg as an operator would (q), then for good.
func (e *encoder) stop() {
	select {
	case <-e.done:
		return
	default:
	}
	_ = e.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		_ = e.cmd.Process.Kill()
		<-e.done
	}
}

// exited waits for ffmpeg to end by itself (the server closed the stream).
func (e *encoder) exited(t *testing.T, ctx context.Context) error {
	t.Helper()
	select {
	case <-e.done:
		return e.err
	case <-ctx.Done():
		t.Fatalf("ffmpeg is still pushing; its output: %s", e.output())
		return nil
	}
}

func getIngest(t *testing.T, c *ivsrealtime.Client, arn string) *types.IngestConfiguration {
	t.Helper()
	out, err := c.GetIngestConfiguration(bg, &ivsrealtime.GetIngestConfigurationInput{Arn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	return out.IngestConfiguration
}

func waitIngestState(t *testing.T, c *ivsrealtime.Client, arn string, want types.IngestConfigurationState) {
	t.Helper()
	testutil.Eventually(t, "ingest configuration "+string(want), func() bool {
		return getIngest(t, c, arn).State == want
	})
}

// participantState finds pid among the stage's participants of any session.
func participantState(c *ivsrealtime.Client, stage, pid string) (*types.Participant, string) {
	ss, err := c.ListStageSessions(bg, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
	if err != nil {
		return nil, ""
	}
	for _, s := range ss.StageSessions {
		out, err := c.GetParticipant(bg, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: s.SessionId, ParticipantId: aws.String(pid)})
		if err == nil {
			return out.Participant, aws.ToString(s.SessionId)
		}
	}
	return nil, ""
}

// anyEvent reports whether pid has the event in any session of the stage.
func anyEvent(c *ivsrealtime.Client, stage, pid string, name types.EventName, code ...types.EventErrorCode) bool {
	ss, err := c.ListStageSessions(bg, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
	if err != nil {
		return false
	}
	for _, s := range ss.StageSessions {
		if hasEvent(c, stage, aws.ToString(s.SessionId), pid, name, "", code...) {
			return true
		}
	}
	return false
}

// noOneConnected: every participant of every session has left.
func noOneConnected(c *ivsrealtime.Client, stage string) bool {
	ss, err := c.ListStageSessions(bg, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(stage)})
	if err != nil {
		return false
	}
	for _, s := range ss.StageSessions {
		ps, err := c.ListParticipants(bg, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: s.SessionId})
		if err != nil {
			return false
		}
		for _, p := range ps.Participants {
			if p.State == types.ParticipantStateConnected {
				return false
			}
		}
	}
	return true
}

func TestRTMPIngestReachesSubscribers(t *testing.T) {
	needFFmpeg(t)
	for _, proto := range []types.IngestProtocol{types.IngestProtocolRtmp, types.IngestProtocolRtmps} {
		t.Run(string(proto), func(t *testing.T) {
			testutil.CheckLeaks(t)
			ctx := testContext(t)
			ts := startServer(t, "")
			c := ts.client()
			stage := newStage(t, c)
			ic := newIngest(t, c, stage, proto, proto == types.IngestProtocolRtmp)
			pid := aws.ToString(ic.ParticipantId)

			st := mustStage(t, c, stage)
			endpoint := aws.ToString(st.Endpoints.Rtmp)
			addr := ts.Ingest.RTMPAddr()
			if proto == types.IngestProtocolRtmps {
				endpoint, addr = aws.ToString(st.Endpoints.Rtmps), ts.Ingest.RTMPSAddr()
			}
			scheme := strings.ToLower(string(proto))
			if want := fmt.Sprintf("%s://%s/app/", scheme, addr); endpoint != want {
				t.Fatalf("GetStage endpoints.%s = %q, want %q", scheme, endpoint, want)
			}
			if getIngest(t, c, aws.ToString(ic.Arn)).State != types.IngestConfigurationStateInactive {
				t.Fatal("a configuration nobody streams to is not INACTIVE")
			}

			enc := push(t, endpoint+aws.ToString(ic.StreamKey), encoderArgs("640x360"))
			waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateActive)
			if l, err := c.ListIngestConfigurations(bg, &ivsrealtime.ListIngestConfigurationsInput{FilterByState: types.IngestConfigurationStateActive}); err != nil || len(l.IngestConfigurations) != 1 || aws.ToString(l.IngestConfigurations[0].Arn) != aws.ToString(ic.Arn) {
				t.Fatalf("ListIngestConfigurations filterByState ACTIVE: %v %+v", err, l)
			}
			var p *types.Participant
			testutil.Eventually(t, "the encoder as a publishing participant", func() bool {
				p, _ = participantState(c, stage, pid)
				return p != nil && p.State == types.ParticipantStateConnected && p.Published
			})
			if p.Protocol != types.ParticipantProtocol(proto) || aws.ToString(p.UserId) != "encoder-1" || p.Attributes["source"] != "obs" {
				t.Fatalf("participant: protocol %q, user %q, attributes %v", p.Protocol, aws.ToString(p.UserId), p.Attributes)
			}
			// ingestConfigurationArn and redundantIngest are newer than the
			// Go SDK here: read as JSON.
			_, sid := participantState(c, stage, pid)
			for _, op := range []string{"/GetParticipant", "/ListParticipants"} {
				body := fmt.Sprintf(`{"stageArn":%q,"sessionId":%q,"participantId":%q}`, stage, sid, pid)
				status, _, out := ts.call(t, "POST", op, []byte(body))
				if status != 200 || !strings.Contains(string(out), fmt.Sprintf(`"ingestConfigurationArn":%q`, aws.ToString(ic.Arn))) || !strings.Contains(string(out), `"redundantIngest":false`) {
					t.Fatalf("%s: %d %s", op, status, out)
				}
			}

			// A WebRTC subscriber gets the encoder's H.264 as it is and its
			// audio as Opus.
			tok, _ := newToken(t, c, stage, "viewer", types.ParticipantTokenCapabilitySubscribe)
			// The stage's other participants see it publishing.
			ev := joinEvents(t, ctx, tok)
			waitState(t, ctx, ev, func(s rtclient.StageState) bool {
				p, ok := s.Participant(pid)
				return ok && p.IsPublishing && p.UserID == "encoder-1" && p.Attributes["source"] == "obs"
			})
			sub := subscribe(t, ctx, tok, rtclient.SubscribeOptions{PublisherID: pid})
			if err := sub.WaitFrames(ctx, "video", 60); err != nil {
				t.Fatalf("video frames: %v (ffmpeg: %s)", err, enc.output())
			}
			if err := sub.WaitFrames(ctx, "audio", 50); err != nil {
				t.Fatalf("audio frames: %v", err)
			}
			v, a := sub.Stats("video"), sub.Stats("audio")
			if !strings.EqualFold(v.MimeType, "video/H264") || !strings.EqualFold(a.MimeType, "audio/opus") || v.Keyframes == 0 {
				t.Fatalf("video %s (%d keyframes), audio %s", v.MimeType, v.Keyframes, a.MimeType)
			}

			// The encoder stops: the participant leaves, the configuration
			// is INACTIVE again, nothing is left.
			enc.stop()
			waitState(t, ctx, ev, func(s rtclient.StageState) bool { _, ok := s.Participant(pid); return !ok })
			waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateInactive)
			testutil.Eventually(t, "the encoder's participant gone", func() bool {
				p, _ := participantState(c, stage, pid)
				return p != nil && p.State == types.ParticipantStateDisconnected
			})
			// The events are written after the participant's state.
			for _, e := range []types.EventName{types.EventNameJoined, types.EventNamePublishStarted, types.EventNamePublishStopped, types.EventNameLeft} {
				testutil.Eventually(t, string(e)+" of the encoder's participant", func() bool { return anyEvent(c, stage, pid, e) })
			}
			testutil.Eventually(t, "no live stream", func() bool { return ts.Ingest.Live() == 0 })
		})
	}
}

func TestRTMPIngestRefusals(t *testing.T) {
	needFFmpeg(t)
	testutil.CheckLeaks(t)
	ctx := testContext(t)
	ts := startServer(t, "", func(c *config.Config) { c.MaxPublishers = 1 })
	c := ts.client()
	rtmpURL := fmt.Sprintf("rtmp://%s/app/", ts.Ingest.RTMPAddr())
	rtmpsURL := fmt.Sprintf("rtmps://%s/app/", ts.Ingest.RTMPSAddr())

	// Each refusal: ffmpeg is turned away (it exits with an error), the
	// configuration's participant has the PUBLISH_ERROR IVS reports, and
	// nothing is left: no participant connected, the configuration
	// INACTIVE, no stream.
	cases := []struct {
		name string
		url  func(key string) string
		args []string
		code types.EventErrorCode
	}{
		{"wrong secret", func(k string) string { return rtmpsURL + k[:len(k)-4] + "aaaa" }, encoderArgs("640x360"), types.EventErrorCodeInvalidStreamKey},
		{"plain RTMP on an RTMPS-only configuration", func(k string) string { return rtmpURL + k }, encoderArgs("640x360"), types.EventErrorCodeInvalidProtocol},
		{"B-frames", func(k string) string { return rtmpsURL + k }, encoderArgs("640x360", "-profile:v", "main", "-x264-params", "bframes=2"), types.EventErrorCodeBFramePresent},
		{"MP3 audio", func(k string) string { return rtmpsURL + k }, encoderArgs("640x360", "-c:a", "libmp3lame", "-ar", "44100"), types.EventErrorCodeInvalidAudioCodec},
		{"Sorenson video", func(k string) string { return rtmpsURL + k }, []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re",
			"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine", "-c:v", "flv", "-c:a", "aac"}, types.EventErrorCodeInvalidVideoCodec},
		{"1080p", func(k string) string { return rtmpsURL + k }, encoderArgs("1920x1080"), types.EventErrorCodeResolutionExceeded},
		{"over 8.5 Mbps", func(k string) string { return rtmpsURL + k }, encoderArgs("640x360", "-vf", "noise=alls=80:allf=t", "-qp", "1"), types.EventErrorCodeBitrateExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stage := newStage(t, c)
			ic := newIngest(t, c, stage, types.IngestProtocolRtmps, false)
			enc := push(t, tc.url(aws.ToString(ic.StreamKey)), tc.args)
			if err := enc.exited(t, ctx); err == nil {
				t.Fatalf("ffmpeg ended without an error; its output: %s", enc.output())
			}
			pid := aws.ToString(ic.ParticipantId)
			testutil.Eventually(t, "PUBLISH_ERROR "+string(tc.code), func() bool {
				return anyEvent(c, stage, pid, types.EventNamePublishError, tc.code)
			})
			testutil.Eventually(t, "no one connected", func() bool { return noOneConnected(c, stage) })
			waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateInactive)
			testutil.Eventually(t, "no live stream", func() bool { return ts.Ingest.Live() == 0 })
		})
	}

	t.Run("a key no configuration has", func(t *testing.T) {
		enc := push(t, rtmpsURL+"rt_123456789012_us-east-1_AbCdEfGhIjKl_nothing", encoderArgs("640x360"))
		if err := enc.exited(t, ctx); err == nil {
			t.Fatalf("ffmpeg ended without an error; its output: %s", enc.output())
		}
	})

	t.Run("a second push on a live key", func(t *testing.T) {
		stage := newStage(t, c)
		ic := newIngest(t, c, stage, types.IngestProtocolRtmps, false)
		key, pid := aws.ToString(ic.StreamKey), aws.ToString(ic.ParticipantId)
		first := push(t, rtmpsURL+key, encoderArgs("640x360"))
		waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateActive)
		second := push(t, rtmpsURL+key, encoderArgs("640x360"))
		if err := second.exited(t, ctx); err == nil {
			t.Fatalf("the second ffmpeg ended without an error; its output: %s", second.output())
		}
		testutil.Eventually(t, "PUBLISH_ERROR REUSE_OF_STREAM_KEY", func() bool {
			return anyEvent(c, stage, pid, types.EventNamePublishError, types.EventErrorCodeReuseOfStreamKey)
		})
		// The first stream goes on.
		if p, _ := participantState(c, stage, pid); p == nil || p.State != types.ParticipantStateConnected || ts.Ingest.Live() != 1 {
			t.Fatalf("the first stream after the second was refused: %+v, %d live", p, ts.Ingest.Live())
		}
		select {
		case <-first.done:
			t.Fatalf("the first ffmpeg ended: %s", first.output())
		default:
		}
		first.stop()
		waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateInactive)
	})

	t.Run("a stage at its publisher limit", func(t *testing.T) {
		stage := newStage(t, c)
		a := newIngest(t, c, stage, types.IngestProtocolRtmps, false)
		b := newIngest(t, c, stage, types.IngestProtocolRtmps, false)
		first := push(t, rtmpsURL+aws.ToString(a.StreamKey), encoderArgs("640x360"))
		waitIngestState(t, c, aws.ToString(a.Arn), types.IngestConfigurationStateActive)
		second := push(t, rtmpsURL+aws.ToString(b.StreamKey), encoderArgs("640x360"))
		if err := second.exited(t, ctx); err == nil {
			t.Fatalf("the second ffmpeg ended without an error; its output: %s", second.output())
		}
		testutil.Eventually(t, "PUBLISH_ERROR QUOTA_EXCEEDED", func() bool {
			return anyEvent(c, stage, aws.ToString(b.ParticipantId), types.EventNamePublishError, types.EventErrorCodeQuotaExceeded)
		})
		if s := getIngest(t, c, aws.ToString(b.Arn)).State; s != types.IngestConfigurationStateInactive {
			t.Fatalf("the refused configuration is %s", s)
		}
		first.stop()
		waitIngestState(t, c, aws.ToString(a.Arn), types.IngestConfigurationStateInactive)
		testutil.Eventually(t, "no one connected", func() bool { return noOneConnected(c, stage) })
	})
}

// TestBrowserReceivesRTMPIngest: a Chromium page with Rostrum's browser
// library plays what ffmpeg pushes over RTMPS (test/browser/ingest.test.mjs).
func TestBrowserReceivesRTMPIngest(t *testing.T) {
	needFFmpeg(t)
	needBrowser(t)
	ts := startServer(t, "")
	c := ts.client()
	stage := newStage(t, c)
	ic := newIngest(t, c, stage, types.IngestProtocolRtmps, false)
	push(t, aws.ToString(mustStage(t, c, stage).Endpoints.Rtmps)+aws.ToString(ic.StreamKey), encoderArgs("640x360"))
	waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateActive)
	runNodeTestsEnv(t, ts, []string{"ROSTRUM_INGEST_STAGE=" + stage, "ROSTRUM_INGEST_PARTICIPANT=" + aws.ToString(ic.ParticipantId)}, "ingest.test.mjs")
}

// TestRTMPIngestConfigurationChangesOnALiveStream: what the API's
// operations do to a configuration while its encoder streams, as the model
// documents them: UpdateIngestConfiguration and DeleteIngestConfiguration
// without force are refused (ConflictException), force disconnects the
// encoder; DisconnectParticipant disconnects it and detaches the
// configuration from the stage; DeleteStage disconnects it and detaches it.
func TestRTMPIngestConfigurationChangesOnALiveStream(t *testing.T) {
	needFFmpeg(t)
	testutil.CheckLeaks(t)
	ctx := testContext(t)
	ts := startServer(t, "")
	c := ts.client()
	rtmpsURL := fmt.Sprintf("rtmps://%s/app/", ts.Ingest.RTMPSAddr())
	live := func(t *testing.T, stage string) (*types.IngestConfiguration, *encoder) {
		t.Helper()
		ic := newIngest(t, c, stage, types.IngestProtocolRtmps, false)
		enc := push(t, rtmpsURL+aws.ToString(ic.StreamKey), encoderArgs("640x360"))
		waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateActive)
		return ic, enc
	}
	var conflict *types.ConflictException

	t.Run("update and delete", func(t *testing.T) {
		stage, other := newStage(t, c), newStage(t, c)
		ic, enc := live(t, stage)
		_, err := c.UpdateIngestConfiguration(bg, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.Arn, StageArn: aws.String(other)})
		if !errors.As(err, &conflict) {
			t.Fatalf("moving a live configuration: %v, want ConflictException", err)
		}
		_, err = c.UpdateIngestConfiguration(bg, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.Arn, StageArn: aws.String("")})
		if !errors.As(err, &conflict) {
			t.Fatalf("detaching a live configuration: %v, want ConflictException", err)
		}
		if _, err := c.DeleteIngestConfiguration(bg, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn}); !errors.As(err, &conflict) {
			t.Fatalf("deleting a live configuration without force: %v, want ConflictException", err)
		}
		if ts.Ingest.Live() != 1 {
			t.Fatal("a refused change ended the stream")
		}
		if _, err := c.DeleteIngestConfiguration(bg, &ivsrealtime.DeleteIngestConfigurationInput{Arn: ic.Arn, Force: true}); err != nil {
			t.Fatal(err)
		}
		if err := enc.exited(t, ctx); err == nil {
			t.Fatal("ffmpeg went on without an error after its configuration was deleted")
		}
		testutil.Eventually(t, "the encoder's participant gone", func() bool { return noOneConnected(c, stage) })
		testutil.Eventually(t, "no live stream", func() bool { return ts.Ingest.Live() == 0 })
		// The deleted key no longer streams.
		again := push(t, rtmpsURL+aws.ToString(ic.StreamKey), encoderArgs("640x360"))
		if err := again.exited(t, ctx); err == nil {
			t.Fatal("a deleted configuration's key was taken")
		}
	})

	t.Run("DisconnectParticipant", func(t *testing.T) {
		stage := newStage(t, c)
		ic, enc := live(t, stage)
		if _, err := c.DisconnectParticipant(bg, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(stage), ParticipantId: ic.ParticipantId, Reason: aws.String("bye")}); err != nil {
			t.Fatal(err)
		}
		if err := enc.exited(t, ctx); err == nil {
			t.Fatal("ffmpeg went on without an error after DisconnectParticipant")
		}
		waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateInactive)
		if got := getIngest(t, c, aws.ToString(ic.Arn)); aws.ToString(got.StageArn) != "" {
			t.Fatalf("the configuration still points at %q after DisconnectParticipant", aws.ToString(got.StageArn))
		}
		testutil.Eventually(t, "the encoder's participant gone", func() bool { return noOneConnected(c, stage) })
		// Detached: the encoder's reconnect joins no stage.
		again := push(t, rtmpsURL+aws.ToString(ic.StreamKey), encoderArgs("640x360"))
		if err := again.exited(t, ctx); err == nil {
			t.Fatal("a detached configuration's encoder was taken")
		}
	})

	t.Run("DeleteStage", func(t *testing.T) {
		stage := newStage(t, c)
		ic, enc := live(t, stage)
		if _, err := c.DeleteStage(bg, &ivsrealtime.DeleteStageInput{Arn: aws.String(stage)}); err != nil {
			t.Fatal(err)
		}
		if err := enc.exited(t, ctx); err == nil {
			t.Fatal("ffmpeg went on without an error after DeleteStage")
		}
		waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateInactive)
		if got := getIngest(t, c, aws.ToString(ic.Arn)); aws.ToString(got.StageArn) != "" {
			t.Fatalf("the configuration still points at %q after DeleteStage", aws.ToString(got.StageArn))
		}
		testutil.Eventually(t, "no live stream", func() bool { return ts.Ingest.Live() == 0 })
	})
}

// TestRTMPIngestIsRecorded: an RTMP encoder on a stage that records is
// recorded like any publisher (the recorder taps the local publisher).
func TestRTMPIngestIsRecorded(t *testing.T) {
	needFFmpeg(t)
	data := t.TempDir()
	ts := startServer(t, data)
	c := ts.client()
	stage := recordingStage(t, c, "recordings")
	ic := newIngest(t, c, stage, types.IngestProtocolRtmps, false)
	pid := aws.ToString(ic.ParticipantId)
	// 3 Mbit/s for 14 s: past the RTMP acknowledgement window (2.5 MB) and
	// the connection's 10 s deadline, which a live stream must outlast.
	enc := push(t, aws.ToString(mustStage(t, c, stage).Endpoints.Rtmps)+aws.ToString(ic.StreamKey), encoderArgs("640x360", "-b:v", "3M", "-minrate", "3M", "-maxrate", "3M", "-bufsize", "3M"))
	testutil.Eventually(t, "the encoder publishing", func() bool {
		p, _ := participantState(c, stage, pid)
		return p != nil && p.Published
	})
	awaitRecordingState(t, c, stage, pid, types.ParticipantRecordingStateActive)
	time.Sleep(14 * time.Second) // the recording's length
	select {
	case <-enc.done:
		t.Fatalf("the stream ended early: %s", enc.output())
	default:
	}
	enc.stop()
	p := awaitRecordingState(t, c, stage, pid, types.ParticipantRecordingStateStopped)
	dir := recordingDir(t, filepath.Join(data, "storage", "recordings"), aws.ToString(p.RecordingS3Prefix))
	pr := testutil.FFprobe(t, filepath.Join(dir, "media/hls/multivariant.m3u8"))
	if v, w, h := pr.Stream("video"); v != "h264" || w != 640 || h != 360 {
		t.Fatalf("recorded video: %s %dx%d", v, w, h)
	}
	if a, _, _ := pr.Stream("audio"); a != "aac" {
		t.Fatalf("recorded audio: %s", a)
	}
	if d := pr.Duration(); d < 12 {
		t.Fatalf("a recording of %.2f s for about 14 s of streaming", d)
	}
}

// TestRTMPIngestAfterSIGKILL: a server killed while an encoder streams
// leaves no transcoder behind, and its next start makes the configuration
// it left ACTIVE INACTIVE again, so that it can be updated and streamed to.
func TestRTMPIngestAfterSIGKILL(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	bin := buildRostrum(t, dir)
	data := filepath.Join(dir, "data")
	args := append([]string{"--data-dir", data}, serveDatabaseArgs(t, data)...)
	srv := runServe(t, bin, args...)
	c := srv.client()
	stage := newStage(t, c)
	ic := newIngest(t, c, stage, types.IngestProtocolRtmps, false)
	enc := push(t, aws.ToString(mustStage(t, c, stage).Endpoints.Rtmps)+aws.ToString(ic.StreamKey), encoderArgs("640x360"))
	waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateActive)
	transcoders := func() []string {
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(srv.cmd.Process.Pid), "ffmpeg").Output()
		return strings.Fields(string(out))
	}
	testutil.Eventually(t, "the server's AAC transcoder", func() bool { return len(transcoders()) == 1 })
	pid, _ := strconv.Atoi(transcoders()[0])

	srv.signal(t, syscall.SIGKILL)
	testutil.Eventually(t, "the transcoder gone with the server", func() bool {
		// Gone, or a zombie waiting for whoever reaps orphans here.
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(b), ") Z ")
	})
	enc.stop()

	srv2 := runServe(t, bin, args...)
	c2 := srv2.client()
	waitIngestState(t, c2, aws.ToString(ic.Arn), types.IngestConfigurationStateInactive)
	if _, err := c2.UpdateIngestConfiguration(bg, &ivsrealtime.UpdateIngestConfigurationInput{Arn: ic.Arn, StageArn: aws.String(stage)}); err != nil {
		t.Fatalf("updating the configuration after the restart: %v", err)
	}
}

// TestRTMPIngestOneKindOnly: an encoder that sends only video, or only
// audio, publishes what it has once a second of its stream shows no more.
func TestRTMPIngestOneKindOnly(t *testing.T) {
	needFFmpeg(t)
	testutil.CheckLeaks(t)
	ctx := testContext(t)
	ts := startServer(t, "")
	c := ts.client()
	for _, tc := range []struct {
		name, kind string
		drop       string
	}{{"video only", "video", "-an"}, {"audio only", "audio", "-vn"}} {
		t.Run(tc.name, func(t *testing.T) {
			stage := newStage(t, c)
			ic := newIngest(t, c, stage, types.IngestProtocolRtmps, false)
			enc := push(t, aws.ToString(mustStage(t, c, stage).Endpoints.Rtmps)+aws.ToString(ic.StreamKey), encoderArgs("640x360", tc.drop))
			waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateActive)
			tok, _ := newToken(t, c, stage, "viewer", types.ParticipantTokenCapabilitySubscribe)
			sub := subscribe(t, ctx, tok, rtclient.SubscribeOptions{PublisherID: aws.ToString(ic.ParticipantId)})
			if err := sub.WaitFrames(ctx, tc.kind, 30); err != nil {
				t.Fatalf("%s frames: %v (ffmpeg: %s)", tc.kind, err, enc.output())
			}
			other := map[string]string{"video": "audio", "audio": "video"}[tc.kind]
			if st := sub.Stats(other); st.Packets != 0 {
				t.Fatalf("%d %s packets from an encoder that sends none", st.Packets, other)
			}
			enc.stop()
			waitIngestState(t, c, aws.ToString(ic.Arn), types.IngestConfigurationStateInactive)
		})
	}
}
