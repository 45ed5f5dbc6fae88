package stage

import (
	"context"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/composition"
	"github.com/rostrum-dev/rostrum/internal/testutil"
)

// A composition follows a stage through WatchStage: the view it gets
// changes with joins, publishing, leaves, the session's end and the
// stage's deletion, always the newest, never out of order.
func TestWatchStage(t *testing.T) {
	testutil.CheckLeaks(t)
	r := newRig(t, func(c *Config) { c.SessionGrace = 50 * time.Millisecond })
	views := make(chan composition.StageView, 100)
	cancel, err := r.m.WatchStage(testStageARN, func(v composition.StageView) { views <- v })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	await := func(what string, cond func(composition.StageView) bool) composition.StageView {
		t.Helper()
		deadline := time.After(testutil.Patience)
		for {
			select {
			case v := <-views:
				if cond(v) {
					return v
				}
			case <-deadline:
				t.Fatalf("no view with %s", what)
			}
		}
	}
	has := func(v composition.StageView, id string, publishing bool) bool {
		for _, p := range v.Participants {
			if p.ID == id {
				return p.Publishing == publishing
			}
		}
		return false
	}
	await("no session before anyone joins", func(v composition.StageView) bool { return v.SessionID == "" && !v.Deleted })

	alice, _ := r.open("alice")
	v := await("alice present", func(v composition.StageView) bool { return has(v, "alice", false) })
	if v.SessionID == "" || v.Source == nil {
		t.Fatalf("a view with a participant and no session or source: %+v", v)
	}
	_, pub := r.publish("alice")
	await("alice publishing", func(v composition.StageView) bool { return has(v, "alice", true) })
	pub.Close()
	await("alice no longer publishing", func(v composition.StageView) bool { return has(v, "alice", false) })
	alice.Closed()
	await("the session's end", func(v composition.StageView) bool { return v.SessionID == "" && len(v.Participants) == 0 })

	// A new session is followed by the same watch.
	bob, _ := r.open("bob")
	await("bob in the next session", func(v composition.StageView) bool { return has(v, "bob", false) })
	r.svc.deleteStage(testStageARN)
	r.m.StageDeleted(context.Background(), testStageARN)
	await("the stage deleted", func(v composition.StageView) bool { return v.Deleted })
	bob.Closed()
}
