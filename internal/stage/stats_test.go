package stage

import (
	"testing"
	"testing/synctest"
	"time"
)

// Stats follows joins, leaves and the end of the session after its grace
// period.
func TestStatsCountsStagesSessionsAndParticipants(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, func(c *Config) { c.SessionGrace = 10 * time.Second })
		if s := r.m.Stats(); s != (Stats{}) {
			t.Fatalf("before anyone joined: %+v", s)
		}
		alice, _ := r.open("alice")
		bob, _ := r.open("bob")
		if s := r.m.Stats(); s != (Stats{Stages: 1, Sessions: 1, Participants: 2}) {
			t.Errorf("two joined: %+v", s)
		}
		bob.Closed()
		synctest.Wait()
		if s := r.m.Stats(); s != (Stats{Stages: 1, Sessions: 1, Participants: 1}) {
			t.Errorf("bob left: %+v", s)
		}
		alice.Closed()
		synctest.Wait()
		if s := r.m.Stats(); s != (Stats{Stages: 1, Sessions: 1, Participants: 0}) {
			t.Errorf("in the grace period: %+v", s)
		}
		time.Sleep(11 * time.Second)
		synctest.Wait()
		if s := r.m.Stats(); s != (Stats{}) {
			t.Errorf("after the session ended: %+v", s)
		}
	})
}
