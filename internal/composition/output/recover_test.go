package output

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/objstore"
	"github.com/rostrum-dev/rostrum/internal/objstore/folder"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// TestHLSRecoverAfterCrash records in a child process (this test binary
// again), kills it with SIGKILL as a crashing server dies, and closes the
// recording it left with RecoverHLS: the bucket gets VOD playlists of what
// was written and recording-failed.json.
func TestHLSRecoverAfterCrash(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("no ffmpeg")
	}
	root := t.TempDir()
	storeDir, spoolRoot := filepath.Join(root, "store"), filepath.Join(root, "spool")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHLSRecoverHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "ROSTRUM_HLS_HELPER="+storeDir+"|"+spoolRoot)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "HELPER READY") {
				ready <- true
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Fatal("the recording process ended before recording")
		}
	case <-time.After(2 * testutil.Patience):
		_ = cmd.Process.Kill()
		t.Fatal("the recording process did not record")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	st, err := folder.New(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	// A writer of this process, recording in the same spool, is left alone.
	enc := startEncode(t, 320, 240, 30)
	live, err := StartHLS(HLSConfig{
		Storage: st, Bucket: "bucket", Prefix: "live/composite", StageARN: testStage,
		Renditions: []Rendition{{Name: "240p30-x", Width: 320, Height: 240, Framerate: 30, Source: enc.Stream}},
		SpoolDir:   filepath.Join(spoolRoot, "comp2", "dest"),
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the live writer's state file", func() bool {
		_, err := os.Stat(filepath.Join(spoolRoot, "comp2", "dest", stateFile))
		return err == nil
	})
	before := objectCount(t, st, "bucket", "media/hls/240p30-x/", ".ts")
	if objectCount(t, st, "bucket", keyEnded, "")+objectCount(t, st, "bucket", keyFailed, "") != 0 {
		t.Fatal("an events file at the end before recovery")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := RecoverHLS(ctx, st, spoolRoot, nil)
	if err != nil || n != 1 {
		t.Fatalf("RecoverHLS: %d, %v", n, err)
	}
	failed := readEvent(t, st, "bucket", keyFailed)
	if failed["recording_status"] != "RECORDING_ENDED_WITH_FAILURE" || !strings.Contains(failed["recording_status_message"].(string), "stopped unexpectedly") ||
		failed["recording_started_at"] == nil || failed["recording_ended_at"] == nil {
		t.Fatalf("recording-failed.json: %v", failed)
	}
	pl := string(getObject(t, st, "bucket", "media/hls/240p30-x/playlist.m3u8"))
	if !strings.Contains(pl, "#EXT-X-PLAYLIST-TYPE:VOD") || !strings.Contains(pl, "#EXT-X-ENDLIST") {
		t.Fatalf("playlist after recovery:\n%s", pl)
	}
	segs, _ := readPlaylist([]byte(pl))
	if len(segs) < before || len(segs) < 2 {
		t.Fatalf("%d segments listed, %d were in the bucket at the crash", len(segs), before)
	}
	probe(t, st.Path("bucket", testPrefix+"/media/hls/multivariant.m3u8")).check(t, 320, 240, 30)
	if entries, _ := os.ReadDir(spoolRoot); len(entries) != 1 || entries[0].Name() != "comp2" {
		t.Fatalf("the spool holds %v, want only the live writer's", entries)
	}
	if s, _ := live.State(); s != StateActive {
		t.Fatalf("the live writer is %s after the recovery", s)
	}
	// A second recovery finds nothing.
	if n, err := RecoverHLS(ctx, st, spoolRoot, nil); n != 0 || err != nil {
		t.Fatalf("second RecoverHLS: %d, %v", n, err)
	}
	stopWriter(t, live)
	if _, _, err := objstore.GetBytes(ctx, st, "bucket", "live/composite/"+keyEnded); err != nil {
		t.Fatalf("the live writer's recording-ended.json: %v", err)
	}
}

// TestHLSRecoverHelper is the recording process of TestHLSRecoverAfterCrash.
func TestHLSRecoverHelper(t *testing.T) {
	env := os.Getenv("ROSTRUM_HLS_HELPER")
	if env == "" {
		t.Skip("the child process of TestHLSRecoverAfterCrash")
	}
	storeDir, spoolRoot, _ := strings.Cut(env, "|")
	st, err := folder.New(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	enc := startEncode(t, 320, 240, 30)
	_, err = StartHLS(HLSConfig{
		Storage: st, Bucket: "bucket", Prefix: testPrefix, StageARN: testStage,
		Renditions: []Rendition{{Name: "240p30-x", Width: 320, Height: 240, Framerate: 30, Source: enc.Stream}},
		SpoolDir:   filepath.Join(spoolRoot, "comp", "dest"),
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "2 segments", func() bool { return objectCount(t, st, "bucket", "media/hls/240p30-x/", ".ts") >= 2 })
	os.Stdout.WriteString("HELPER READY\n")
	time.Sleep(time.Hour) // killed by the test
}
