package storetest

// Node heartbeats, closing a stopped node's sessions, and the retention
// sweep of ended sessions.

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store"
)

func nodeSession(t *testing.T, s store.Store, stageARN, sessionID, node string, start time.Time) *store.StageSession {
	t.Helper()
	ss := &store.StageSession{StageARN: stageARN, SessionID: sessionID, StartTime: start, NodeID: node}
	if err := s.StartStageSession(ctx, ss); err != nil {
		t.Fatal(err)
	}
	return ss
}

func putPart(t *testing.T, s store.Store, stageARN, sessionID, pid, state string) *store.Participant {
	t.Helper()
	p := &store.Participant{StageARN: stageARN, SessionID: sessionID, ParticipantID: pid, UserID: "u-" + pid,
		State: state, FirstJoinTime: ts(1), Doc: []byte(fmt.Sprintf(`{"participantId":%q,"state":%q}`, pid, state))}
	if err := s.PutParticipant(ctx, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func addEvent(t *testing.T, s store.Store, stageARN, sessionID, pid, name string, at time.Time) *store.ParticipantEvent {
	t.Helper()
	e := &store.ParticipantEvent{StageARN: stageARN, SessionID: sessionID, ParticipantID: pid, EventTime: at,
		Doc: []byte(fmt.Sprintf(`{"name":%q}`, name))}
	if err := s.AddParticipantEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	return e
}

func nodes(t *testing.T, s store.Store) map[string]time.Time {
	t.Helper()
	ns, err := s.ListNodes(ctx)
	if err != nil {
		t.Fatalf("ListNodes: %v", err)
	}
	m := map[string]time.Time{}
	for _, n := range ns {
		m[n.ID] = n.Heartbeat
	}
	return m
}

func testHeartbeats(t *testing.T, s store.Store) {
	if n := nodes(t, s); len(n) != 0 {
		t.Fatalf("nodes of an empty store: %v", n)
	}
	for _, hb := range []struct {
		node string
		at   time.Time
	}{{"n1", ts(10)}, {"n2", ts(3)}, {"n1", ts(5)}, {"n2", ts(7)}} {
		if err := s.Heartbeat(ctx, hb.node, hb.at); err != nil {
			t.Fatalf("Heartbeat(%s): %v", hb.node, err)
		}
	}
	n := nodes(t, s)
	if len(n) != 2 {
		t.Fatalf("nodes: %v", n)
	}
	// An older heartbeat (n1 at 5 after 10) changes nothing.
	checkTime(t, "n1 heartbeat", n["n1"], ts(10))
	checkTime(t, "n2 heartbeat", n["n2"], ts(7))
}

// closeAll is a CloseNodeSessions callback that records what it was given
// and marks every connected participant DISCONNECTED with a LEFT event and
// one outbox entry per session.
type closeAll struct {
	got []*store.OpenSession
}

func (c *closeAll) fn(open []*store.OpenSession) (*store.SessionClosing, error) {
	c.got = open
	w := &store.SessionClosing{}
	for _, o := range open {
		for _, p := range o.Connected {
			q := *p
			q.State = "DISCONNECTED"
			q.Doc = []byte(fmt.Sprintf(`{"participantId":%q,"state":"DISCONNECTED"}`, p.ParticipantID))
			w.Participants = append(w.Participants, &q)
			w.Events = append(w.Events, &store.ParticipantEvent{StageARN: p.StageARN, SessionID: p.SessionID,
				ParticipantID: p.ParticipantID, EventTime: o.End, Doc: []byte(`{"name":"LEFT"}`)})
			// The participant's replication ends with its session.
			w.Replicas = append(w.Replicas, &store.ParticipantReplica{SourceStageARN: p.StageARN, ParticipantID: p.ParticipantID,
				DestinationStageARN: "arn:dst", State: "STOPPED", Doc: []byte(`{"replicationState":"STOPPED"}`)})
		}
		w.Outbox = append(w.Outbox, outboxEntry("sink", o.Session.StageARN, len(w.Outbox), o.End))
	}
	return w, nil
}

func testCloseNodeSessions(t *testing.T, s store.Store) {
	a := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	b := mustCreate(t, s, newRes(owner1, kStage, "b", ""))
	c := mustCreate(t, s, newRes(owner1, kStage, "c", ""))
	// n1 ran an ended session on a, then a live one; n2 runs one on b.
	old := nodeSession(t, s, a.ARN, "st-old", "n1", ts(0))
	if err := s.EndStageSession(ctx, a.ARN, "st-old", ts(1)); err != nil {
		t.Fatal(err)
	}
	sa := nodeSession(t, s, a.ARN, "st-a", "n1", ts(2))
	sb := nodeSession(t, s, b.ARN, "st-b", "n2", ts(2))
	sc := nodeSession(t, s, c.ARN, "st-c", "n1", ts(3))
	alice := putPart(t, s, a.ARN, "st-a", "alice", "CONNECTED")
	putPart(t, s, a.ARN, "st-a", "bob", "DISCONNECTED")
	carol := putPart(t, s, a.ARN, "st-a", "carol", "CONNECTED")
	putPart(t, s, b.ARN, "st-b", "dave", "CONNECTED")
	e1 := addEvent(t, s, a.ARN, "st-a", "alice", "JOINED", ts(4))
	addEvent(t, s, a.ARN, "st-a", "bob", "JOINED", ts(5))
	addEvent(t, s, a.ARN, "st-a", "bob", "LEFT", ts(25)) // the session's last sign of life
	e3 := addEvent(t, s, a.ARN, "st-a", "carol", "JOINED", ts(6))
	e4 := addEvent(t, s, a.ARN, "st-a", "alice", "PUBLISH_STARTED", ts(7))
	addEvent(t, s, b.ARN, "st-b", "dave", "JOINED", ts(8))
	// alice replicates into another stage.
	replica := &store.ParticipantReplica{SourceStageARN: a.ARN, ParticipantID: "alice", DestinationStageARN: "arn:dst", State: "ACTIVE", Doc: []byte(`{"replicationState":"ACTIVE"}`)}
	if err := s.PutParticipantReplica(ctx, replica); err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(ctx, "n1", ts(20)); err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(ctx, "n2", ts(21)); err != nil {
		t.Fatal(err)
	}

	var cl closeAll
	n, err := s.CloseNodeSessions(ctx, "n1", ts(30), cl.fn)
	if err != nil {
		t.Fatalf("CloseNodeSessions: %v", err)
	}
	if n != 2 || len(cl.got) != 2 {
		t.Fatalf("closed %d sessions, fn got %d, want 2", n, len(cl.got))
	}
	oa, oc := cl.got[0], cl.got[1]
	checkSession(t, oa.Session, sa)
	checkSession(t, oc.Session, sc)
	// st-a's last sign of life is bob's LEFT, after the heartbeat; st-c has
	// none but the heartbeat.
	checkTime(t, "st-a End", oa.End, ts(25))
	checkTime(t, "st-c End", oc.End, ts(20))
	if len(oa.Connected) != 2 {
		t.Fatalf("st-a connected: %d, want alice and carol", len(oa.Connected))
	}
	checkParticipant(t, oa.Connected[0], alice)
	checkParticipant(t, oa.Connected[1], carol)
	var evSeqs []int64
	for _, e := range oa.Events {
		evSeqs = append(evSeqs, e.Seq)
	}
	if want := []int64{e1.Seq, e3.Seq, e4.Seq}; !slices.Equal(evSeqs, want) {
		t.Errorf("st-a events: seqs %v, want %v (the connected participants' only, in order)", evSeqs, want)
	}
	if len(oc.Connected) != 0 || len(oc.Events) != 0 {
		t.Errorf("st-c: %d connected, %d events, want none", len(oc.Connected), len(oc.Events))
	}

	// The sessions ended, the stages have no active session; n2's is
	// untouched, as is n1's session that had already ended.
	for _, x := range []struct {
		ss  *store.StageSession
		end time.Time
	}{{sa, ts(25)}, {sc, ts(20)}, {old, ts(1)}} {
		got, err := s.GetStageSession(ctx, x.ss.StageARN, x.ss.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		want := *x.ss
		want.EndTime = &x.end
		checkSession(t, got, &want)
	}
	activeSession(t, s, a, "")
	activeSession(t, s, c, "")
	activeSession(t, s, b, "st-b")
	if got, err := s.GetStageSession(ctx, b.ARN, "st-b"); err != nil || got.EndTime != nil {
		t.Errorf("n2's session: %+v %v", got, err)
	}
	checkSession(t, mustSession(t, s, b.ARN, "st-b"), sb)

	// fn's writes are there.
	connected := "CONNECTED"
	if ps, err := s.ListParticipants(ctx, store.ParticipantQuery{StageARN: a.ARN, SessionID: "st-a", State: &connected}); err != nil || len(ps) != 0 {
		t.Errorf("st-a CONNECTED after closing: %d, %v", len(ps), err)
	}
	got, err := s.GetParticipant(ctx, a.ARN, "st-a", "alice")
	if err != nil || got.State != "DISCONNECTED" || got.Seq != alice.Seq {
		t.Errorf("alice after closing: %+v %v", got, err)
	}
	evs, err := s.ListParticipantEvents(ctx, a.ARN, "st-a", "alice", store.Page{})
	if err != nil || len(evs) != 3 || string(evs[2].Doc) != `{"name":"LEFT"}` {
		t.Errorf("alice's events: %d, %v", len(evs), err)
	} else {
		checkTime(t, "LEFT time", evs[2].EventTime, ts(25))
	}
	if c := counts(t, s); c["sink"] != 2 {
		t.Errorf("outbox: %v, want 2 entries", c)
	}
	// The replication record was replaced, keeping its place.
	if rs, err := s.ListParticipantReplicas(ctx, a.ARN, "alice", store.Page{}); err != nil || len(rs) != 1 ||
		rs[0].Seq != replica.Seq || rs[0].State != "STOPPED" || string(rs[0].Doc) != `{"replicationState":"STOPPED"}` {
		t.Errorf("alice's replicas after closing: %+v, %v", rs, err)
	}
	// The node's heartbeat is gone; n2's is kept.
	if n := nodes(t, s); len(n) != 1 || n["n2"].IsZero() {
		t.Errorf("nodes after closing n1: %v", n)
	}
	// Nothing is left to close.
	cl = closeAll{}
	if n, err := s.CloseNodeSessions(ctx, "n1", time.Time{}, cl.fn); err != nil || n != 0 || len(cl.got) != 0 {
		t.Errorf("closing n1 again: %d sessions, fn got %d, %v", n, len(cl.got), err)
	}
	// A node that never beat and owns nothing closes nothing.
	if n, err := s.CloseNodeSessions(ctx, "ghost", ts(30), nil); err != nil || n != 0 {
		t.Errorf("closing an unknown node: %d, %v", n, err)
	}
}

func mustSession(t *testing.T, s store.Store, stageARN, sessionID string) *store.StageSession {
	t.Helper()
	ss, err := s.GetStageSession(ctx, stageARN, sessionID)
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

func testCloseNodeSessionsAlive(t *testing.T, s store.Store) {
	a := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	nodeSession(t, s, a.ARN, "st-a", "n1", ts(0))
	if err := s.Heartbeat(ctx, "n1", ts(10)); err != nil {
		t.Fatal(err)
	}
	// A peer that thinks n1 dead unless it beat at 10 or later is wrong.
	called := false
	_, err := s.CloseNodeSessions(ctx, "n1", ts(10), func([]*store.OpenSession) (*store.SessionClosing, error) {
		called = true
		return nil, nil
	})
	wantErr(t, "CloseNodeSessions of a live node", err, store.ErrNodeAlive)
	if called {
		t.Error("fn ran for a live node")
	}
	activeSession(t, s, a, "st-a")
	if n := nodes(t, s); n["n1"].IsZero() {
		t.Error("the live node's heartbeat was removed")
	}
	// Once the cut-off is after its heartbeat, it is closed.
	if n, err := s.CloseNodeSessions(ctx, "n1", ts(11), nil); err != nil || n != 1 {
		t.Fatalf("CloseNodeSessions after the cut-off: %d, %v", n, err)
	}
	activeSession(t, s, a, "")
}

func testCloseNodeSessionsAborts(t *testing.T, s store.Store) {
	a := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	b := mustCreate(t, s, newRes(owner1, kStage, "b", ""))
	nodeSession(t, s, a.ARN, "st-a", "n1", ts(0))
	nodeSession(t, s, b.ARN, "st-b", "n2", ts(0))
	putPart(t, s, a.ARN, "st-a", "alice", "CONNECTED")
	if err := s.Heartbeat(ctx, "n1", ts(10)); err != nil {
		t.Fatal(err)
	}
	check := func(what string) {
		t.Helper()
		activeSession(t, s, a, "st-a")
		activeSession(t, s, b, "st-b")
		if got := mustSession(t, s, a.ARN, "st-a"); got.EndTime != nil {
			t.Errorf("%s: st-a ended", what)
		}
		if p, err := s.GetParticipant(ctx, a.ARN, "st-a", "alice"); err != nil || p.State != "CONNECTED" {
			t.Errorf("%s: alice %+v %v", what, p, err)
		}
		if c := counts(t, s); len(c) != 0 {
			t.Errorf("%s: outbox %v", what, c)
		}
		if n := nodes(t, s); n["n1"].IsZero() {
			t.Errorf("%s: n1's heartbeat removed", what)
		}
	}
	boom := errors.New("boom")
	_, err := s.CloseNodeSessions(ctx, "n1", time.Time{}, func([]*store.OpenSession) (*store.SessionClosing, error) {
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("CloseNodeSessions with failing fn: %v, want boom", err)
	}
	check("fn failed")
	// Rows under a session that is not being closed (n2's) abort it all.
	_, err = s.CloseNodeSessions(ctx, "n1", time.Time{}, func(open []*store.OpenSession) (*store.SessionClosing, error) {
		w := &store.SessionClosing{Outbox: []*store.OutboxEntry{outboxEntry("sink", a.ARN, 1, ts(1))}}
		w.Events = append(w.Events, &store.ParticipantEvent{StageARN: b.ARN, SessionID: "st-b", ParticipantID: "x",
			EventTime: ts(1), Doc: []byte(`{}`)})
		return w, nil
	})
	if err == nil {
		t.Fatal("CloseNodeSessions wrote under another node's session")
	}
	check("foreign session")
	// So does a replica record of a stage whose session is not closed.
	_, err = s.CloseNodeSessions(ctx, "n1", time.Time{}, func(open []*store.OpenSession) (*store.SessionClosing, error) {
		return &store.SessionClosing{Replicas: []*store.ParticipantReplica{{SourceStageARN: b.ARN, ParticipantID: "x",
			DestinationStageARN: a.ARN, State: "STOPPED", Doc: []byte(`{}`)}}}, nil
	})
	if err == nil {
		t.Fatal("CloseNodeSessions wrote a replica of another node's stage")
	}
	if rs, err := s.ListParticipantReplicas(ctx, b.ARN, "x", store.Page{}); err != nil || len(rs) != 0 {
		t.Errorf("replicas of b after the refused close: %d, %v", len(rs), err)
	}
	check("foreign replica")
}

// A session's end is never before its start, even when the node's last
// heartbeat is older (or missing: sessions from before nodes existed).
func testCloseNodeSessionsEnd(t *testing.T, s store.Store) {
	a := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	b := mustCreate(t, s, newRes(owner1, kStage, "b", ""))
	nodeSession(t, s, a.ARN, "st-a", "", ts(40))
	nodeSession(t, s, b.ARN, "st-b", "", ts(42))
	addEvent(t, s, b.ARN, "st-b", "p", "JOINED", ts(45))
	if err := s.Heartbeat(ctx, "", ts(30)); err != nil {
		t.Fatal(err)
	}
	var cl closeAll
	if n, err := s.CloseNodeSessions(ctx, "", time.Time{}, cl.fn); err != nil || n != 2 {
		t.Fatalf("CloseNodeSessions: %d, %v", n, err)
	}
	checkTime(t, "st-a End", cl.got[0].End, ts(40))
	checkTime(t, "st-b End", cl.got[1].End, ts(45))
	checkTime(t, "st-a end time", *mustSession(t, s, a.ARN, "st-a").EndTime, ts(40))
}

func testDeleteEndedSessions(t *testing.T, s store.Store) {
	a := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	b := mustCreate(t, s, newRes(owner1, kStage, "b", ""))
	ended := func(stage *store.Resource, sid string, end time.Time, parts, events int) {
		t.Helper()
		nodeSession(t, s, stage.ARN, sid, "n1", ts(0))
		for i := range parts {
			putPart(t, s, stage.ARN, sid, fmt.Sprintf("p%d", i), "DISCONNECTED")
		}
		for i := range events {
			addEvent(t, s, stage.ARN, sid, fmt.Sprintf("p%d", i%max(parts, 1)), "JOINED", ts(1))
		}
		if end.IsZero() {
			return
		}
		if err := s.EndStageSession(ctx, stage.ARN, sid, end); err != nil {
			t.Fatal(err)
		}
	}
	// Expired at the cut-off ts(30): 3 participants + 5 events + 1 session,
	// and a bare session. Kept: one that ended at the cut-off, one after,
	// and an active one.
	ended(a, "st-1", ts(10), 3, 5)
	ended(b, "st-2", ts(20), 0, 0)
	ended(a, "st-3", ts(30), 1, 2)
	ended(b, "st-4", ts(50), 1, 1)
	ended(a, "st-5", time.Time{}, 2, 2)

	if _, err := s.DeleteEndedSessions(ctx, ts(30), 0); err == nil {
		t.Error("DeleteEndedSessions with limit 0 succeeded")
	}
	total, calls := 0, 0
	for {
		n, err := s.DeleteEndedSessions(ctx, ts(30), 3)
		if err != nil {
			t.Fatal(err)
		}
		if n > 3 {
			t.Fatalf("one call deleted %d rows, over its limit of 3", n)
		}
		total += n
		calls++
		if n < 3 {
			break
		}
		if calls > 10 {
			t.Fatal("DeleteEndedSessions does not converge")
		}
	}
	if total != 10 || calls != 4 {
		t.Errorf("deleted %d rows in %d calls, want 10 rows in 4 calls", total, calls)
	}
	for _, x := range []struct {
		stage *store.Resource
		sid   string
	}{{a, "st-1"}, {b, "st-2"}} {
		_, err := s.GetStageSession(ctx, x.stage.ARN, x.sid)
		wantErr(t, "GetStageSession of an expired session", err, store.ErrNotFound)
	}
	if ps, err := s.ListParticipants(ctx, store.ParticipantQuery{StageARN: a.ARN, SessionID: "st-1"}); err != nil || len(ps) != 0 {
		t.Errorf("participants of an expired session: %d, %v", len(ps), err)
	}
	if es, err := s.ListParticipantEvents(ctx, a.ARN, "st-1", "p0", store.Page{}); err != nil || len(es) != 0 {
		t.Errorf("events of an expired session: %d, %v", len(es), err)
	}
	for _, x := range []struct {
		stage          *store.Resource
		sid            string
		parts, events0 int
	}{{a, "st-3", 1, 2}, {b, "st-4", 1, 1}, {a, "st-5", 2, 1}} {
		mustSession(t, s, x.stage.ARN, x.sid)
		ps, err := s.ListParticipants(ctx, store.ParticipantQuery{StageARN: x.stage.ARN, SessionID: x.sid})
		if err != nil || len(ps) != x.parts {
			t.Errorf("%s: %d participants, %v; want %d", x.sid, len(ps), err, x.parts)
		}
		es, err := s.ListParticipantEvents(ctx, x.stage.ARN, x.sid, "p0", store.Page{})
		if err != nil || len(es) != x.events0 {
			t.Errorf("%s: p0 has %d events, %v; want %d", x.sid, len(es), err, x.events0)
		}
	}
	activeSession(t, s, a, "st-5")
	// Nothing more to do.
	if n, err := s.DeleteEndedSessions(ctx, ts(30), 3); err != nil || n != 0 {
		t.Errorf("a second sweep deleted %d, %v", n, err)
	}
}
