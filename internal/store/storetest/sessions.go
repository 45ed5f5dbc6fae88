package storetest

// Stage sessions, participants, their events, replicas and revocations.

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store"
)

func checkSession(t *testing.T, got, want *store.StageSession) {
	t.Helper()
	if got.Seq != want.Seq || got.StageARN != want.StageARN || got.SessionID != want.SessionID || got.NodeID != want.NodeID {
		t.Errorf("session = {%d %s %s node %q}, want {%d %s %s node %q}", got.Seq, got.StageARN, got.SessionID, got.NodeID,
			want.Seq, want.StageARN, want.SessionID, want.NodeID)
	}
	checkTime(t, "StartTime", got.StartTime, want.StartTime)
	switch {
	case want.EndTime == nil && got.EndTime != nil:
		t.Errorf("%s: EndTime = %v, want nil", want.SessionID, *got.EndTime)
	case want.EndTime != nil && got.EndTime == nil:
		t.Errorf("%s: EndTime = nil, want %v", want.SessionID, *want.EndTime)
	case want.EndTime != nil:
		checkTime(t, "EndTime", *got.EndTime, *want.EndTime)
	}
}

func activeSession(t *testing.T, s store.Store, stage *store.Resource, want string) {
	t.Helper()
	if got := mustGet(t, s, stage.ARN).ActiveSessionID; got != want {
		t.Errorf("GetResource: ActiveSessionID = %q, want %q", got, want)
	}
	rs, err := s.ListResources(ctx, store.ResourceQuery{Kind: stage.Kind, Owner: stage.Owner})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.ARN == stage.ARN {
			if r.ActiveSessionID != want {
				t.Errorf("ListResources: ActiveSessionID = %q, want %q", r.ActiveSessionID, want)
			}
			return
		}
	}
	t.Errorf("ListResources: %s missing", stage.ARN)
}

func testStageSessions(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	other := mustCreate(t, s, newRes(owner1, kStage, "b", ""))
	activeSession(t, s, stage, "")

	ss := &store.StageSession{StageARN: stage.ARN, SessionID: "st-1", StartTime: ts(0)}
	if err := s.StartStageSession(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if ss.Seq <= 0 {
		t.Errorf("Seq = %d, want > 0", ss.Seq)
	}
	got, err := s.GetStageSession(ctx, stage.ARN, "st-1")
	if err != nil {
		t.Fatal(err)
	}
	checkSession(t, got, ss)
	activeSession(t, s, stage, "st-1")
	activeSession(t, s, other, "")

	// An update of the stage keeps its active session.
	if _, err := s.UpdateResource(ctx, stage.ARN, func(r *store.Resource) error {
		r.Doc = []byte(`{"v":2}`)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	activeSession(t, s, stage, "st-1")

	end := ts(30)
	if err := s.EndStageSession(ctx, stage.ARN, "st-1", end); err != nil {
		t.Fatal(err)
	}
	got, err = s.GetStageSession(ctx, stage.ARN, "st-1")
	if err != nil {
		t.Fatal(err)
	}
	want := *ss
	want.EndTime = &end
	checkSession(t, got, &want)
	activeSession(t, s, stage, "")
}

func testStageSessionEndOnlyClearsOwn(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	s1 := &store.StageSession{StageARN: stage.ARN, SessionID: "st-1", StartTime: ts(0)}
	s2 := &store.StageSession{StageARN: stage.ARN, SessionID: "st-2", StartTime: ts(10)}
	for _, x := range []*store.StageSession{s1, s2} {
		if err := s.StartStageSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if s2.Seq <= s1.Seq {
		t.Errorf("second session Seq %d, not greater than %d", s2.Seq, s1.Seq)
	}
	activeSession(t, s, stage, "st-2")
	// Ending the older session leaves the newer one active.
	if err := s.EndStageSession(ctx, stage.ARN, "st-1", ts(20)); err != nil {
		t.Fatal(err)
	}
	activeSession(t, s, stage, "st-2")
	if err := s.EndStageSession(ctx, stage.ARN, "st-2", ts(30)); err != nil {
		t.Fatal(err)
	}
	activeSession(t, s, stage, "")
}

func testStageSessionErrors(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	_, err := s.GetStageSession(ctx, stage.ARN, "nope")
	wantErr(t, "GetStageSession of missing", err, store.ErrNotFound)
	wantErr(t, "EndStageSession of missing", s.EndStageSession(ctx, stage.ARN, "nope", ts(0)), store.ErrNotFound)
	wantErr(t, "StartStageSession on missing stage",
		s.StartStageSession(ctx, &store.StageSession{StageARN: arn(owner1, kStage, "nope"), SessionID: "st-1", StartTime: ts(0)}),
		store.ErrNotFound)
	if err := s.StartStageSession(ctx, &store.StageSession{StageARN: stage.ARN, SessionID: "st-1", StartTime: ts(0)}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "StartStageSession of existing",
		s.StartStageSession(ctx, &store.StageSession{StageARN: stage.ARN, SessionID: "st-1", StartTime: ts(5)}),
		store.ErrAlreadyExists)
	// The same session id on another stage is another session.
	_, err = s.GetStageSession(ctx, arn(owner1, kStage, "nope"), "st-1")
	wantErr(t, "GetStageSession on other stage", err, store.ErrNotFound)
}

func testListStageSessions(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	other := mustCreate(t, s, newRes(owner1, kStage, "b", ""))
	var ss []*store.StageSession // oldest first
	for i := range 5 {
		for _, st := range []*store.Resource{stage, other} {
			x := &store.StageSession{StageARN: st.ARN, SessionID: fmt.Sprintf("st-%d", i), StartTime: ts(i)}
			if err := s.StartStageSession(ctx, x); err != nil {
				t.Fatal(err)
			}
			if i < 4 {
				if err := s.EndStageSession(ctx, st.ARN, x.SessionID, ts(i).Add(time.Second)); err != nil {
					t.Fatal(err)
				}
				end := ts(i).Add(time.Second)
				x.EndTime = &end
			}
			if st == stage {
				ss = append(ss, x)
			}
		}
	}
	list := func(p store.Page, want ...*store.StageSession) {
		t.Helper()
		got, err := s.ListStageSessions(ctx, stage.ARN, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("ListStageSessions(%+v): %d sessions, want %d", p, len(got), len(want))
		}
		for i := range got {
			checkSession(t, got[i], want[i])
		}
	}
	list(store.Page{}, ss[4], ss[3], ss[2], ss[1], ss[0])
	list(store.Page{Limit: 2}, ss[4], ss[3], ss[2])
	list(store.Page{Limit: 2, After: ss[3].Seq}, ss[2], ss[1], ss[0])
	list(store.Page{Limit: 2, After: ss[1].Seq}, ss[0])
	list(store.Page{Limit: 2, After: ss[0].Seq})
	list(store.Page{After: ss[2].Seq}, ss[1], ss[0])
	if got, err := s.ListStageSessions(ctx, arn(owner1, kStage, "nope"), store.Page{}); err != nil || len(got) != 0 {
		t.Fatalf("ListStageSessions of unknown stage: %d, %v", len(got), err)
	}
}

func checkParticipant(t *testing.T, got, want *store.Participant) {
	t.Helper()
	if got.Seq != want.Seq || got.StageARN != want.StageARN || got.SessionID != want.SessionID ||
		got.ParticipantID != want.ParticipantID || got.UserID != want.UserID || got.State != want.State ||
		got.Published != want.Published || got.RecordingState != want.RecordingState {
		t.Errorf("participant = %+v, want %+v", *got, *want)
	}
	checkTime(t, "FirstJoinTime", got.FirstJoinTime, want.FirstJoinTime)
	if !bytes.Equal(got.Doc, want.Doc) {
		t.Errorf("participant Doc = %s, want %s", got.Doc, want.Doc)
	}
}

func startSession(t *testing.T, s store.Store, stageARN, sessionID string) {
	t.Helper()
	if err := s.StartStageSession(ctx, &store.StageSession{StageARN: stageARN, SessionID: sessionID, StartTime: ts(0)}); err != nil {
		t.Fatal(err)
	}
}

func testParticipants(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	startSession(t, s, stage.ARN, "st-1")
	startSession(t, s, stage.ARN, "st-2")

	p := &store.Participant{
		StageARN: stage.ARN, SessionID: "st-1", ParticipantID: "p1", UserID: "u1",
		State: "CONNECTED", Published: false, RecordingState: "DISABLED",
		FirstJoinTime: ts(5), Doc: []byte(`{"id":"p1"}`),
	}
	if err := s.PutParticipant(ctx, p); err != nil {
		t.Fatal(err)
	}
	if p.Seq <= 0 {
		t.Errorf("Seq = %d, want > 0", p.Seq)
	}
	get := func(stageARN, sessionID, id string) *store.Participant {
		t.Helper()
		got, err := s.GetParticipant(ctx, stageARN, sessionID, id)
		if err != nil {
			t.Fatalf("GetParticipant(%s, %s, %s): %v", stageARN, sessionID, id, err)
		}
		return got
	}
	checkParticipant(t, get(stage.ARN, "st-1", "p1"), p)

	// Another participant, then a replace of the first: it keeps its Seq.
	p2 := &store.Participant{StageARN: stage.ARN, SessionID: "st-1", ParticipantID: "p2", FirstJoinTime: ts(6)}
	if err := s.PutParticipant(ctx, p2); err != nil {
		t.Fatal(err)
	}
	if p2.Seq <= p.Seq {
		t.Errorf("p2 Seq %d, not greater than %d", p2.Seq, p.Seq)
	}
	seq := p.Seq
	r := &store.Participant{
		StageARN: stage.ARN, SessionID: "st-1", ParticipantID: "p1", UserID: "u1b",
		State: "DISCONNECTED", Published: true, RecordingState: "ACTIVE",
		FirstJoinTime: ts(7), Doc: []byte(`{"id":"p1","v":2}`),
	}
	if err := s.PutParticipant(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.Seq != seq {
		t.Errorf("replace: Seq = %d, want %d", r.Seq, seq)
	}
	checkParticipant(t, get(stage.ARN, "st-1", "p1"), r)
	checkParticipant(t, get(stage.ARN, "st-1", "p2"), p2)

	// The same participant id in another session is another participant.
	p3 := &store.Participant{StageARN: stage.ARN, SessionID: "st-2", ParticipantID: "p1", UserID: "other", FirstJoinTime: ts(8)}
	if err := s.PutParticipant(ctx, p3); err != nil {
		t.Fatal(err)
	}
	checkParticipant(t, get(stage.ARN, "st-2", "p1"), p3)
	checkParticipant(t, get(stage.ARN, "st-1", "p1"), r)

	_, err := s.GetParticipant(ctx, stage.ARN, "st-1", "nope")
	wantErr(t, "GetParticipant of missing", err, store.ErrNotFound)
	_, err = s.GetParticipant(ctx, stage.ARN, "nope", "p1")
	wantErr(t, "GetParticipant in missing session", err, store.ErrNotFound)
	wantErr(t, "PutParticipant in missing session",
		s.PutParticipant(ctx, &store.Participant{StageARN: stage.ARN, SessionID: "nope", ParticipantID: "p", FirstJoinTime: ts(0)}),
		store.ErrNotFound)
}

func ptr[T any](v T) *T { return &v }

func testListParticipants(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	startSession(t, s, stage.ARN, "st-1")
	startSession(t, s, stage.ARN, "st-2")

	var ps []*store.Participant
	for i := range 8 {
		p := &store.Participant{
			StageARN:       stage.ARN,
			SessionID:      "st-1",
			ParticipantID:  fmt.Sprintf("p%d", i),
			UserID:         fmt.Sprintf("u%d", i%3),
			State:          []string{"CONNECTED", "DISCONNECTED"}[i%2],
			Published:      i%4 == 0,
			RecordingState: []string{"DISABLED", "ACTIVE", "STOPPED"}[i%3],
			FirstJoinTime:  ts(i),
			Doc:            []byte(fmt.Sprintf(`{"i":%d}`, i)),
		}
		if err := s.PutParticipant(ctx, p); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
		// Noise in the other session.
		q := *p
		q.SessionID = "st-2"
		if err := s.PutParticipant(ctx, &q); err != nil {
			t.Fatal(err)
		}
	}
	// Replacing one keeps its place in the order.
	ps[2].State, ps[2].Doc = "DISCONNECTED", []byte(`{"i":2,"v":2}`)
	if err := s.PutParticipant(ctx, ps[2]); err != nil {
		t.Fatal(err)
	}

	list := func(q store.ParticipantQuery, want ...*store.Participant) {
		t.Helper()
		q.StageARN, q.SessionID = stage.ARN, "st-1"
		got, err := s.ListParticipants(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			ids := make([]string, len(got))
			for i, p := range got {
				ids[i] = p.ParticipantID
			}
			t.Fatalf("ListParticipants(%+v): %q, want %d participants", q, ids, len(want))
		}
		for i := range got {
			checkParticipant(t, got[i], want[i])
		}
	}
	filter := func(keep func(p *store.Participant) bool) []*store.Participant {
		var out []*store.Participant
		for _, p := range ps {
			if keep(p) {
				out = append(out, p)
			}
		}
		return out
	}

	list(store.ParticipantQuery{}, ps...)
	list(store.ParticipantQuery{Page: store.Page{Limit: 3}}, ps[:4]...)
	list(store.ParticipantQuery{Page: store.Page{Limit: 3, After: ps[2].Seq}}, ps[3:7]...)
	list(store.ParticipantQuery{Page: store.Page{Limit: 3, After: ps[5].Seq}}, ps[6:]...)

	u1 := filter(func(p *store.Participant) bool { return p.UserID == "u1" })
	list(store.ParticipantQuery{UserID: ptr("u1")}, u1...)
	list(store.ParticipantQuery{UserID: ptr("u1"), Page: store.Page{Limit: 1}}, u1[:2]...)
	list(store.ParticipantQuery{UserID: ptr("u1"), Page: store.Page{Limit: 1, After: u1[0].Seq}}, u1[1:]...)
	list(store.ParticipantQuery{UserID: ptr("nobody")})

	list(store.ParticipantQuery{Published: ptr(true)}, filter(func(p *store.Participant) bool { return p.Published })...)
	unpub := filter(func(p *store.Participant) bool { return !p.Published })
	list(store.ParticipantQuery{Published: ptr(false)}, unpub...)
	list(store.ParticipantQuery{Published: ptr(false), Page: store.Page{Limit: 2, After: unpub[1].Seq}}, unpub[2:5]...)

	disc := filter(func(p *store.Participant) bool { return p.State == "DISCONNECTED" })
	list(store.ParticipantQuery{State: ptr("DISCONNECTED")}, disc...)
	list(store.ParticipantQuery{State: ptr("CONNECTED")}, filter(func(p *store.Participant) bool { return p.State == "CONNECTED" })...)
	list(store.ParticipantQuery{State: ptr("DISCONNECTED"), Page: store.Page{Limit: 2}}, disc[:3]...)

	act := filter(func(p *store.Participant) bool { return p.RecordingState == "ACTIVE" })
	list(store.ParticipantQuery{RecordingState: ptr("ACTIVE")}, act...)
	list(store.ParticipantQuery{RecordingState: ptr("ACTIVE"), Page: store.Page{After: act[0].Seq}}, act[1:]...)
	list(store.ParticipantQuery{RecordingState: ptr("FAILED")})

	if got, err := s.ListParticipants(ctx, store.ParticipantQuery{StageARN: stage.ARN, SessionID: "nope"}); err != nil || len(got) != 0 {
		t.Fatalf("ListParticipants of unknown session: %d, %v", len(got), err)
	}
}

func testParticipantEvents(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	other := mustCreate(t, s, newRes(owner1, kStage, "b", ""))
	startSession(t, s, stage.ARN, "st-1")
	startSession(t, s, stage.ARN, "st-2")
	startSession(t, s, other.ARN, "st-1")

	var want []*store.ParticipantEvent
	var last int64
	for i := range 6 {
		e := &store.ParticipantEvent{
			StageARN: stage.ARN, SessionID: "st-1", ParticipantID: "p1",
			EventTime: ts(i), Doc: []byte(fmt.Sprintf(`{"n":%d}`, i)),
		}
		if err := s.AddParticipantEvent(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.Seq <= last {
			t.Fatalf("event %d: Seq %d, not greater than %d", i, e.Seq, last)
		}
		last = e.Seq
		want = append(want, e)
		// Noise: another participant, session and stage.
		for _, n := range []*store.ParticipantEvent{
			{StageARN: stage.ARN, SessionID: "st-1", ParticipantID: "p2", EventTime: ts(i)},
			{StageARN: stage.ARN, SessionID: "st-2", ParticipantID: "p1", EventTime: ts(i)},
			{StageARN: other.ARN, SessionID: "st-1", ParticipantID: "p1", EventTime: ts(i)},
		} {
			if err := s.AddParticipantEvent(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
	}
	list := func(p store.Page, want ...*store.ParticipantEvent) {
		t.Helper()
		got, err := s.ListParticipantEvents(ctx, stage.ARN, "st-1", "p1", p)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("ListParticipantEvents(%+v): %d events, want %d", p, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.Seq != w.Seq || g.StageARN != w.StageARN || g.SessionID != w.SessionID || g.ParticipantID != w.ParticipantID {
				t.Errorf("event %d = {%d %s %s %s}, want {%d %s %s %s}", i,
					g.Seq, g.StageARN, g.SessionID, g.ParticipantID, w.Seq, w.StageARN, w.SessionID, w.ParticipantID)
			}
			checkTime(t, "EventTime", g.EventTime, w.EventTime)
			if !bytes.Equal(g.Doc, w.Doc) {
				t.Errorf("event %d Doc = %s, want %s", i, g.Doc, w.Doc)
			}
		}
	}
	list(store.Page{}, want...)
	list(store.Page{Limit: 2}, want[:3]...)
	list(store.Page{Limit: 2, After: want[1].Seq}, want[2:5]...)
	list(store.Page{Limit: 2, After: want[3].Seq}, want[4:]...)
	list(store.Page{Limit: 2, After: want[5].Seq})
	if got, err := s.ListParticipantEvents(ctx, stage.ARN, "st-1", "nobody", store.Page{}); err != nil || len(got) != 0 {
		t.Fatalf("ListParticipantEvents of unknown participant: %d, %v", len(got), err)
	}
	wantErr(t, "AddParticipantEvent in missing session",
		s.AddParticipantEvent(ctx, &store.ParticipantEvent{StageARN: stage.ARN, SessionID: "nope", ParticipantID: "p1", EventTime: ts(0)}),
		store.ErrNotFound)
}

func testParticipantReplicas(t *testing.T, s store.Store) {
	src := mustCreate(t, s, newRes(owner1, kStage, "src", ""))
	src2 := mustCreate(t, s, newRes(owner1, kStage, "src2", ""))
	dsts := []string{arn(owner1, kStage, "d1"), arn(owner1, kStage, "d2"), arn(owner1, kStage, "d3")}

	var want []*store.ParticipantReplica
	for i, d := range dsts {
		r := &store.ParticipantReplica{
			SourceStageARN: src.ARN, ParticipantID: "p1", DestinationStageARN: d,
			State: "ACTIVE", Doc: []byte(fmt.Sprintf(`{"d":%d}`, i)),
		}
		if err := s.PutParticipantReplica(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.Seq <= 0 || (i > 0 && r.Seq <= want[i-1].Seq) {
			t.Fatalf("replica %d: Seq %d", i, r.Seq)
		}
		want = append(want, r)
		// Noise: another participant, another source stage.
		for _, n := range []*store.ParticipantReplica{
			{SourceStageARN: src.ARN, ParticipantID: "p2", DestinationStageARN: d, State: "ACTIVE"},
			{SourceStageARN: src2.ARN, ParticipantID: "p1", DestinationStageARN: d, State: "ACTIVE"},
		} {
			if err := s.PutParticipantReplica(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Replacing keeps the Seq.
	upd := &store.ParticipantReplica{
		SourceStageARN: src.ARN, ParticipantID: "p1", DestinationStageARN: dsts[0],
		State: "STOPPED", Doc: []byte(`{"d":0,"stopped":true}`),
	}
	if err := s.PutParticipantReplica(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if upd.Seq != want[0].Seq {
		t.Errorf("replace: Seq = %d, want %d", upd.Seq, want[0].Seq)
	}
	want[0] = upd

	list := func(p store.Page, want ...*store.ParticipantReplica) {
		t.Helper()
		got, err := s.ListParticipantReplicas(ctx, src.ARN, "p1", p)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("ListParticipantReplicas(%+v): %d replicas, want %d", p, len(got), len(want))
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.Seq != w.Seq || g.SourceStageARN != w.SourceStageARN || g.ParticipantID != w.ParticipantID ||
				g.DestinationStageARN != w.DestinationStageARN || g.State != w.State || !bytes.Equal(g.Doc, w.Doc) {
				t.Errorf("replica %d = %+v, want %+v", i, *g, *w)
			}
		}
	}
	list(store.Page{}, want...)
	list(store.Page{Limit: 1}, want[:2]...)
	list(store.Page{Limit: 1, After: want[0].Seq}, want[1:]...)
	list(store.Page{Limit: 1, After: want[2].Seq})
	if got, err := s.ListParticipantReplicas(ctx, src.ARN, "nobody", store.Page{}); err != nil || len(got) != 0 {
		t.Fatalf("ListParticipantReplicas of unknown participant: %d, %v", len(got), err)
	}
	wantErr(t, "PutParticipantReplica from missing stage",
		s.PutParticipantReplica(ctx, &store.ParticipantReplica{SourceStageARN: arn(owner1, kStage, "nope"), ParticipantID: "p1", DestinationStageARN: dsts[0]}),
		store.ErrNotFound)
}

func testRevocations(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	other := mustCreate(t, s, newRes(owner1, kStage, "b", ""))
	revoked := func(stageARN, id string, want bool) {
		t.Helper()
		got, err := s.IsParticipantRevoked(ctx, stageARN, id)
		if err != nil || got != want {
			t.Fatalf("IsParticipantRevoked(%s, %s) = %v, %v; want %v", stageARN, id, got, err, want)
		}
	}
	revoked(stage.ARN, "p1", false)
	if err := s.RevokeParticipant(ctx, stage.ARN, "p1", ts(0)); err != nil {
		t.Fatal(err)
	}
	revoked(stage.ARN, "p1", true)
	if err := s.RevokeParticipant(ctx, stage.ARN, "p1", ts(1)); err != nil {
		t.Fatalf("second RevokeParticipant: %v", err)
	}
	revoked(stage.ARN, "p1", true)
	revoked(stage.ARN, "p2", false)
	revoked(other.ARN, "p1", false)
	revoked(arn(owner1, kStage, "nope"), "p1", false)
	wantErr(t, "RevokeParticipant on missing stage",
		s.RevokeParticipant(ctx, arn(owner1, kStage, "nope"), "p1", ts(0)), store.ErrNotFound)
}
