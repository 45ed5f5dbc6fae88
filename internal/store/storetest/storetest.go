// Package storetest is the conformance suite of store.Store. Every
// implementation (sqlite, PostgreSQL) runs it from its own tests, so that the
// service can rely on one behaviour whichever database is configured:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// Beyond what store.go states, the suite pins down these conventions:
//
//   - Page.Limit <= 0 means no limit.
//   - Times read back are in UTC and within a millisecond of what was written;
//     Resource.CreatedAt as set by CreateResource equals what GetResource
//     returns.
//   - StartStageSession on a missing stage, PutParticipant and
//     AddParticipantEvent on a missing session, PutParticipantReplica and
//     RevokeParticipant on a missing stage return ErrNotFound; starting a
//     session that exists returns ErrAlreadyExists.
//   - UpdateResource writes only Doc, State and Refs; it keeps the stage's
//     ActiveSessionID.
//   - Deleting a stage deletes its sessions, participants, events, replicas
//     (as the source) and revocations.
//   - ListParticipants combines filters with AND.
//   - Outbox entries given to StartStageSession, EndStageSession and
//     AddParticipantEvent are written if and only if the method succeeds;
//     they survive the deletion of their stage.
//   - PendingEvents offers one entry per partition (its oldest), so a
//     deferred entry holds back the rest of its partition and nothing else.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store"
)

// Run runs the suite. open must return a new, empty store each time it is
// called; Run closes it when the subtest ends. Subtests run one at a time.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateSeqIncreasing", testCreateSeqIncreasing},
		{"CreateDuplicate", testCreateDuplicate},
		{"CreateQuota", testCreateQuota},
		{"CreateQuotaConcurrent", testCreateQuotaConcurrent},
		{"GetMissing", testGetMissing},
		{"Update", testUpdate},
		{"UpdateMissing", testUpdateMissing},
		{"UpdateFnError", testUpdateFnError},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"Delete", testDelete},
		{"DeleteMissing", testDeleteMissing},
		{"DeleteStageCascades", testDeleteStageCascades},
		{"ListResources", testListResources},
		{"ListResourcesFilters", testListResourcesFilters},
		{"CountResources", testCountResources},
		{"StageSessions", testStageSessions},
		{"StageSessionEndOnlyClearsOwn", testStageSessionEndOnlyClearsOwn},
		{"StageSessionErrors", testStageSessionErrors},
		{"ListStageSessions", testListStageSessions},
		{"Participants", testParticipants},
		{"ListParticipants", testListParticipants},
		{"ParticipantEvents", testParticipantEvents},
		{"ParticipantReplicas", testParticipantReplicas},
		{"Revocations", testRevocations},
		{"Settings", testSettings},
		{"SettingsConcurrent", testSettingsConcurrent},
		{"Outbox", testOutbox},
		{"OutboxOrderPerPartition", testOutboxOrderPerPartition},
		{"OutboxWithFacts", testOutboxWithFacts},
		{"OutboxOutlivesStage", testOutboxOutlivesStage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s)
		})
	}
}

const (
	owner1 = "us-east-1:111111111111"
	owner2 = "us-east-1:222222222222"
	kStage = "stage"
	kStore = "storage-configuration"
	kEnc   = "encoder-configuration"
	kComp  = "composition"
	kIng   = "ingest-configuration"
)

var ctx = context.Background()

func arn(owner, kind, id string) string {
	return fmt.Sprintf("arn:aws:ivs:%s:%s/%s", owner, kind, id)
}

func newRes(owner, kind, id, state string, refs ...string) *store.Resource {
	a := arn(owner, kind, id)
	return &store.Resource{
		ARN:   a,
		Kind:  kind,
		Owner: owner,
		State: state,
		Refs:  refs,
		Doc:   []byte(fmt.Sprintf(`{"arn":%q,"v":1}`, a)),
	}
}

func mustCreate(t *testing.T, s store.Store, r *store.Resource) *store.Resource {
	t.Helper()
	if err := s.CreateResource(ctx, r, 0); err != nil {
		t.Fatalf("CreateResource(%s): %v", r.ARN, err)
	}
	return r
}

// noCheck is a DeleteResource check that allows every delete.
func noCheck(*store.Resource, []*store.Resource) error { return nil }

func mustGet(t *testing.T, s store.Store, arn string) *store.Resource {
	t.Helper()
	r, err := s.GetResource(ctx, arn)
	if err != nil {
		t.Fatalf("GetResource(%s): %v", arn, err)
	}
	return r
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// ts is a time with sub-millisecond digits, not in UTC, so that round trips
// exercise both truncation and time zones.
func ts(sec int) time.Time {
	return time.Date(2025, 3, 4, 5, 6, sec, 123_456_789, time.FixedZone("UTC+2", 2*3600))
}

func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Errorf("%s: location %v, want UTC", what, got.Location())
	}
	if d := got.Sub(want); d <= -time.Millisecond || d >= time.Millisecond {
		t.Errorf("%s: %v, want %v (within 1ms)", what, got, want)
	}
}

func sameStrings(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || slices.Equal(a, b))
}

func checkResource(t *testing.T, got, want *store.Resource) {
	t.Helper()
	if got.ARN != want.ARN || got.Kind != want.Kind || got.Owner != want.Owner ||
		got.Seq != want.Seq || got.State != want.State || got.ActiveSessionID != want.ActiveSessionID {
		t.Errorf("resource = {ARN:%s Kind:%s Owner:%s Seq:%d State:%q Active:%q}, want {ARN:%s Kind:%s Owner:%s Seq:%d State:%q Active:%q}",
			got.ARN, got.Kind, got.Owner, got.Seq, got.State, got.ActiveSessionID,
			want.ARN, want.Kind, want.Owner, want.Seq, want.State, want.ActiveSessionID)
	}
	if !sameStrings(got.Refs, want.Refs) {
		t.Errorf("%s: Refs = %q, want %q", want.ARN, got.Refs, want.Refs)
	}
	if !bytes.Equal(got.Doc, want.Doc) {
		t.Errorf("%s: Doc = %s, want %s", want.ARN, got.Doc, want.Doc)
	}
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("%s: CreatedAt = %v, want %v", want.ARN, got.CreatedAt, want.CreatedAt)
	}
}

func arns(rs []*store.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ARN
	}
	return out
}

func checkARNs(t *testing.T, what string, got []*store.Resource, want ...*store.Resource) {
	t.Helper()
	if g, w := arns(got), arns(want); !sameStrings(g, w) {
		t.Fatalf("%s: got %q, want %q", what, g, w)
	}
}

func testCreateGet(t *testing.T, s store.Store) {
	sc := mustCreate(t, s, newRes(owner1, kStore, "s1", ""))
	before := time.Now()
	r := newRes(owner1, kStage, "a", "", sc.ARN, sc.ARN, "arn:aws:ivs:elsewhere")
	if err := s.CreateResource(ctx, r, 0); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	if r.Seq <= 0 {
		t.Errorf("Seq = %d, want > 0", r.Seq)
	}
	if r.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt location = %v, want UTC", r.CreatedAt.Location())
	}
	if r.CreatedAt.Before(before.Add(-time.Millisecond)) || r.CreatedAt.After(after.Add(time.Millisecond)) {
		t.Errorf("CreatedAt = %v, want between %v and %v", r.CreatedAt, before, after)
	}
	got := mustGet(t, s, r.ARN)
	checkResource(t, got, r)
	if got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
	}

	// No refs, no state, empty document.
	e := &store.Resource{ARN: arn(owner1, kEnc, "e"), Kind: kEnc, Owner: owner1}
	mustCreate(t, s, e)
	checkResource(t, mustGet(t, s, e.ARN), e)
}

func testCreateSeqIncreasing(t *testing.T, s store.Store) {
	var last int64
	for i, kind := range []string{kStage, kEnc, kStage, kStore, kStage} {
		r := mustCreate(t, s, newRes(owner1, kind, fmt.Sprint(i), ""))
		if r.Seq <= last {
			t.Fatalf("create %d: Seq %d, not greater than %d", i, r.Seq, last)
		}
		last = r.Seq
	}
	// Seq is never reused, even after the newest resource is deleted.
	a := arn(owner1, kStage, "4")
	if err := s.DeleteResource(ctx, a, noCheck); err != nil {
		t.Fatal(err)
	}
	r := mustCreate(t, s, newRes(owner1, kStage, "5", ""))
	if r.Seq <= last {
		t.Fatalf("Seq %d after deleting the newest, not greater than %d", r.Seq, last)
	}
}

func testCreateDuplicate(t *testing.T, s store.Store) {
	r := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	dup := newRes(owner1, kStage, "a", "X")
	dup.Doc = []byte(`{"other":true}`)
	wantErr(t, "duplicate CreateResource", s.CreateResource(ctx, dup, 0), store.ErrAlreadyExists)
	wantErr(t, "duplicate CreateResource with limit", s.CreateResource(ctx, dup, 10), store.ErrAlreadyExists)
	checkResource(t, mustGet(t, s, r.ARN), r)
	if n, err := s.CountResources(ctx, kStage, owner1); err != nil || n != 1 {
		t.Fatalf("CountResources = %d, %v; want 1", n, err)
	}
}

func testCreateQuota(t *testing.T, s store.Store) {
	for i := range 2 {
		if err := s.CreateResource(ctx, newRes(owner1, kStage, fmt.Sprint(i), ""), 2); err != nil {
			t.Fatalf("create %d under quota: %v", i, err)
		}
	}
	over := newRes(owner1, kStage, "over", "")
	wantErr(t, "CreateResource over quota", s.CreateResource(ctx, over, 2), store.ErrQuotaExceeded)
	if _, err := s.GetResource(ctx, over.ARN); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("resource refused by quota: GetResource error %v, want ErrNotFound", err)
	}
	// Other kinds and other owners have their own count.
	if err := s.CreateResource(ctx, newRes(owner1, kEnc, "e", ""), 2); err != nil {
		t.Fatalf("other kind: %v", err)
	}
	if err := s.CreateResource(ctx, newRes(owner2, kStage, "x", ""), 2); err != nil {
		t.Fatalf("other owner: %v", err)
	}
	// limit 0 means no limit.
	if err := s.CreateResource(ctx, newRes(owner1, kStage, "nolimit", ""), 0); err != nil {
		t.Fatalf("limit 0: %v", err)
	}
	// A higher limit admits more; deleting frees room.
	wantErr(t, "CreateResource over quota", s.CreateResource(ctx, over, 3), store.ErrQuotaExceeded)
	if err := s.DeleteResource(ctx, arn(owner1, kStage, "0"), noCheck); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "CreateResource over quota", s.CreateResource(ctx, over, 2), store.ErrQuotaExceeded)
	if err := s.CreateResource(ctx, over, 3); err != nil {
		t.Fatalf("after delete: %v", err)
	}
	if n, err := s.CountResources(ctx, kStage, owner1); err != nil || n != 3 {
		t.Fatalf("CountResources = %d, %v; want 3", n, err)
	}
}

func testCreateQuotaConcurrent(t *testing.T, s store.Store) {
	const n, limit = 20, 5
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = s.CreateResource(ctx, newRes(owner1, kStage, fmt.Sprint(i), ""), limit)
		})
	}
	// Noise: another owner and kind, no limit, at the same time.
	for i := range n {
		wg.Go(func() {
			<-start
			if err := s.CreateResource(ctx, newRes(owner2, kStage, fmt.Sprint(i), ""), 0); err != nil {
				t.Errorf("create without limit: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, store.ErrQuotaExceeded):
		default:
			t.Errorf("create %d: %v", i, err)
		}
	}
	if ok != limit {
		t.Errorf("%d creates succeeded, want %d", ok, limit)
	}
	if c, err := s.CountResources(ctx, kStage, owner1); err != nil || c != limit {
		t.Errorf("CountResources = %d, %v; want %d", c, err, limit)
	}
	rs, err := s.ListResources(ctx, store.ResourceQuery{Kind: kStage, Owner: owner1})
	if err != nil || len(rs) != limit {
		t.Errorf("ListResources: %d rows, %v; want %d", len(rs), err, limit)
	}
	if c, err := s.CountResources(ctx, kStage, owner2); err != nil || c != n {
		t.Errorf("CountResources(owner2) = %d, %v; want %d", c, err, n)
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	_, err := s.GetResource(ctx, arn(owner1, kStage, "nope"))
	wantErr(t, "GetResource of missing", err, store.ErrNotFound)
}

func testUpdate(t *testing.T, s store.Store) {
	s1 := mustCreate(t, s, newRes(owner1, kStore, "s1", ""))
	s2 := mustCreate(t, s, newRes(owner1, kStore, "s2", ""))
	r := mustCreate(t, s, newRes(owner1, kIng, "i", "INACTIVE", s1.ARN))

	var seen *store.Resource
	got, err := s.UpdateResource(ctx, r.ARN, func(x *store.Resource) error {
		c := *x
		seen = &c
		x.Doc = []byte(`{"v":2}`)
		x.State = "ACTIVE"
		x.Refs = []string{s2.ARN}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkResource(t, seen, r)
	want := *r
	want.Doc, want.State, want.Refs = []byte(`{"v":2}`), "ACTIVE", []string{s2.ARN}
	checkResource(t, got, &want)
	checkResource(t, mustGet(t, s, r.ARN), &want)

	// Lists see the new state and references.
	q := store.ResourceQuery{Kind: kIng, Owner: owner1}
	for _, c := range []struct {
		ref, state string
		want       []*store.Resource
	}{
		{s1.ARN, "", nil},
		{s2.ARN, "", []*store.Resource{r}},
		{"", "INACTIVE", nil},
		{"", "ACTIVE", []*store.Resource{r}},
	} {
		q.Ref, q.State = c.ref, c.state
		rs, err := s.ListResources(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		checkARNs(t, fmt.Sprintf("ListResources(ref %q, state %q)", c.ref, c.state), rs, c.want...)
	}

	// Clearing the references.
	got, err = s.UpdateResource(ctx, r.ARN, func(x *store.Resource) error {
		x.Refs = nil
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want.Refs = nil
	checkResource(t, got, &want)
	checkResource(t, mustGet(t, s, r.ARN), &want)

	// Only Doc, State and Refs are written.
	got, err = s.UpdateResource(ctx, r.ARN, func(x *store.Resource) error {
		x.ARN, x.Kind, x.Owner, x.Seq = "arn:other", "other", owner2, 999999
		x.CreatedAt = time.Unix(0, 0)
		x.ActiveSessionID = "bogus"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkResource(t, got, &want)
	checkResource(t, mustGet(t, s, r.ARN), &want)
	if _, err := s.GetResource(ctx, "arn:other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetResource(arn:other): %v, want ErrNotFound", err)
	}
}

func testUpdateMissing(t *testing.T, s store.Store) {
	called := false
	_, err := s.UpdateResource(ctx, arn(owner1, kStage, "nope"), func(*store.Resource) error {
		called = true
		return nil
	})
	wantErr(t, "UpdateResource of missing", err, store.ErrNotFound)
	if called {
		t.Error("fn called for a missing resource")
	}
}

type sentinelError struct{ msg string }

func (e *sentinelError) Error() string { return e.msg }

func testUpdateFnError(t *testing.T, s store.Store) {
	sc := mustCreate(t, s, newRes(owner1, kStore, "s", ""))
	r := mustCreate(t, s, newRes(owner1, kStage, "a", "S"))
	boom := &sentinelError{"boom"}
	got, err := s.UpdateResource(ctx, r.ARN, func(x *store.Resource) error {
		x.Doc = []byte(`{"changed":true}`)
		x.State = "CHANGED"
		x.Refs = []string{sc.ARN}
		return boom
	})
	if err != boom {
		t.Fatalf("UpdateResource error %v (%T), want the fn's error as is", err, err)
	}
	if got != nil {
		t.Errorf("UpdateResource returned %+v with an error", got)
	}
	checkResource(t, mustGet(t, s, r.ARN), r)
	rs, err := s.ListResources(ctx, store.ResourceQuery{Kind: kStage, Owner: owner1, Ref: sc.ARN})
	if err != nil {
		t.Fatal(err)
	}
	checkARNs(t, "referrers after aborted update", rs)
}

func testUpdateConcurrent(t *testing.T, s store.Store) {
	r := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	if _, err := s.UpdateResource(ctx, r.ARN, func(x *store.Resource) error {
		x.Doc = []byte("0")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := s.UpdateResource(ctx, r.ARN, func(x *store.Resource) error {
				var v int
				if _, err := fmt.Sscan(string(x.Doc), &v); err != nil {
					return err
				}
				x.Doc = []byte(fmt.Sprint(v + 1))
				return nil
			})
			if err != nil {
				t.Errorf("UpdateResource: %v", err)
			}
		})
	}
	wg.Wait()
	if got := mustGet(t, s, r.ARN); string(got.Doc) != fmt.Sprint(n) {
		t.Errorf("after %d concurrent increments Doc = %s", n, got.Doc)
	}
}

func testDelete(t *testing.T, s store.Store) {
	sc := mustCreate(t, s, newRes(owner1, kStore, "s", ""))
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", "", sc.ARN))
	enc := mustCreate(t, s, newRes(owner1, kEnc, "e", ""))
	comp := mustCreate(t, s, newRes(owner1, kComp, "c", "STARTING", stage.ARN, enc.ARN, sc.ARN, sc.ARN))
	mustCreate(t, s, newRes(owner1, kStore, "unrelated", ""))

	// check sees the resource and its referrers, and its error aborts.
	inUse := errors.New("in use")
	var seen *store.Resource
	var referrers []*store.Resource
	err := s.DeleteResource(ctx, sc.ARN, func(r *store.Resource, refs []*store.Resource) error {
		seen, referrers = r, refs
		return inUse
	})
	if err != inUse {
		t.Fatalf("DeleteResource error %v, want check's error as is", err)
	}
	if seen == nil {
		t.Fatal("check not called")
	}
	checkResource(t, seen, sc)
	got := arns(referrers)
	slices.Sort(got)
	want := []string{stage.ARN, comp.ARN}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("referrers = %q, want %q", got, want)
	}
	for _, r := range referrers {
		switch r.ARN {
		case stage.ARN:
			checkResource(t, r, stage)
		case comp.ARN:
			checkResource(t, r, comp)
		}
	}
	checkResource(t, mustGet(t, s, sc.ARN), sc)

	// A resource nobody refers to: check sees no referrers.
	called := false
	err = s.DeleteResource(ctx, comp.ARN, func(r *store.Resource, refs []*store.Resource) error {
		called = true
		if len(refs) != 0 {
			t.Errorf("referrers of %s = %q, want none", r.ARN, arns(refs))
		}
		return nil
	})
	if err != nil || !called {
		t.Fatalf("DeleteResource = %v (check called %v)", err, called)
	}
	if _, err := s.GetResource(ctx, comp.ARN); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetResource after delete: %v, want ErrNotFound", err)
	}

	// The composition's references went with it.
	err = s.DeleteResource(ctx, enc.ARN, func(r *store.Resource, refs []*store.Resource) error {
		if len(refs) != 0 {
			return fmt.Errorf("referrers %q", arns(refs))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Deleting a referenced resource leaves the referrer's Refs alone.
	if err := s.DeleteResource(ctx, sc.ARN, noCheck); err != nil {
		t.Fatal(err)
	}
	checkResource(t, mustGet(t, s, stage.ARN), stage)
	rs, err := s.ListResources(ctx, store.ResourceQuery{Kind: kStore, Owner: owner1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].ARN != arn(owner1, kStore, "unrelated") {
		t.Fatalf("storage configurations left: %q", arns(rs))
	}
	if n, err := s.CountResources(ctx, kComp, owner1); err != nil || n != 0 {
		t.Fatalf("CountResources = %d, %v; want 0", n, err)
	}
}

func testDeleteMissing(t *testing.T, s store.Store) {
	called := false
	err := s.DeleteResource(ctx, arn(owner1, kStage, "nope"), func(*store.Resource, []*store.Resource) error {
		called = true
		return nil
	})
	wantErr(t, "DeleteResource of missing", err, store.ErrNotFound)
	if called {
		t.Error("check called for a missing resource")
	}
}

func testDeleteStageCascades(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	other := mustCreate(t, s, newRes(owner1, kStage, "b", ""))
	for _, st := range []*store.Resource{stage, other} {
		if err := s.StartStageSession(ctx, &store.StageSession{StageARN: st.ARN, SessionID: "st-1", StartTime: ts(0)}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutParticipant(ctx, &store.Participant{StageARN: st.ARN, SessionID: "st-1", ParticipantID: "p", FirstJoinTime: ts(1)}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddParticipantEvent(ctx, &store.ParticipantEvent{StageARN: st.ARN, SessionID: "st-1", ParticipantID: "p", EventTime: ts(1)}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutParticipantReplica(ctx, &store.ParticipantReplica{SourceStageARN: st.ARN, ParticipantID: "p", DestinationStageARN: "arn:dst", State: "ACTIVE"}); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeParticipant(ctx, st.ARN, "p", ts(2)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteResource(ctx, stage.ARN, noCheck); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		st   *store.Resource
		gone bool
	}{{stage, true}, {other, false}} {
		_, err := s.GetStageSession(ctx, c.st.ARN, "st-1")
		if c.gone != errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: GetStageSession: %v", c.st.ARN, err)
		}
		_, err = s.GetParticipant(ctx, c.st.ARN, "st-1", "p")
		if c.gone != errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: GetParticipant: %v", c.st.ARN, err)
		}
		want := 1
		if c.gone {
			want = 0
		}
		if ss, err := s.ListStageSessions(ctx, c.st.ARN, store.Page{}); err != nil || len(ss) != want {
			t.Errorf("%s: ListStageSessions: %d, %v; want %d", c.st.ARN, len(ss), err, want)
		}
		if ps, err := s.ListParticipants(ctx, store.ParticipantQuery{StageARN: c.st.ARN, SessionID: "st-1"}); err != nil || len(ps) != want {
			t.Errorf("%s: ListParticipants: %d, %v; want %d", c.st.ARN, len(ps), err, want)
		}
		if es, err := s.ListParticipantEvents(ctx, c.st.ARN, "st-1", "p", store.Page{}); err != nil || len(es) != want {
			t.Errorf("%s: ListParticipantEvents: %d, %v; want %d", c.st.ARN, len(es), err, want)
		}
		if rs, err := s.ListParticipantReplicas(ctx, c.st.ARN, "p", store.Page{}); err != nil || len(rs) != want {
			t.Errorf("%s: ListParticipantReplicas: %d, %v; want %d", c.st.ARN, len(rs), err, want)
		}
		if revoked, err := s.IsParticipantRevoked(ctx, c.st.ARN, "p"); err != nil || revoked == c.gone {
			t.Errorf("%s: IsParticipantRevoked = %v, %v; want %v", c.st.ARN, revoked, err, !c.gone)
		}
	}
}

func testListResources(t *testing.T, s store.Store) {
	var stages []*store.Resource
	for i := range 5 {
		stages = append(stages, mustCreate(t, s, newRes(owner1, kStage, fmt.Sprint(i), "")))
		// Interleave other kinds and owners.
		mustCreate(t, s, newRes(owner2, kStage, fmt.Sprint(i), ""))
		if i < 2 {
			mustCreate(t, s, newRes(owner1, kEnc, fmt.Sprint(i), ""))
		}
	}
	list := func(q store.ResourceQuery) []*store.Resource {
		t.Helper()
		rs, err := s.ListResources(ctx, q)
		if err != nil {
			t.Fatalf("ListResources(%+v): %v", q, err)
		}
		return rs
	}
	q := store.ResourceQuery{Kind: kStage, Owner: owner1}
	all := list(q)
	checkARNs(t, "all stages", all, stages...)
	for i, r := range all {
		checkResource(t, r, stages[i])
	}

	// Pages of 2 come back with one extra row while more follow.
	q.Limit = 2
	checkARNs(t, "page 1", list(q), stages[0], stages[1], stages[2])
	q.After = stages[1].Seq
	checkARNs(t, "page 2", list(q), stages[2], stages[3], stages[4])
	q.After = stages[3].Seq
	checkARNs(t, "page 3", list(q), stages[4])
	q.After = stages[4].Seq
	checkARNs(t, "past the end", list(q))
	q.Limit, q.After = 5, 0
	checkARNs(t, "exact page", list(q), stages...)
	q.Limit = 10
	checkARNs(t, "large page", list(q), stages...)

	// Owners and kinds are isolated.
	if rs := list(store.ResourceQuery{Kind: kStage, Owner: owner2}); len(rs) != 5 {
		t.Errorf("owner2 stages: %q", arns(rs))
	} else {
		for _, r := range rs {
			if r.Owner != owner2 || r.Kind != kStage {
				t.Errorf("owner2 list has %s (%s, %s)", r.ARN, r.Kind, r.Owner)
			}
		}
	}
	checkARNs(t, "encoder configurations", list(store.ResourceQuery{Kind: kEnc, Owner: owner1}),
		mustGet(t, s, arn(owner1, kEnc, "0")), mustGet(t, s, arn(owner1, kEnc, "1")))
	checkARNs(t, "no such kind", list(store.ResourceQuery{Kind: "nope", Owner: owner1}))
	checkARNs(t, "no such owner", list(store.ResourceQuery{Kind: kStage, Owner: "nope"}))
}

func testListResourcesFilters(t *testing.T, s store.Store) {
	sa := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	sb := mustCreate(t, s, newRes(owner1, kStage, "b", ""))
	var onA, activeOnA, active []*store.Resource
	for i := range 8 {
		ref, state := sa.ARN, "INACTIVE"
		if i%2 == 1 {
			ref = sb.ARN
		}
		if i%3 == 0 {
			state = "ACTIVE"
		}
		// Naming the stage twice must not list the resource twice.
		r := mustCreate(t, s, newRes(owner1, kIng, fmt.Sprint(i), state, ref, ref))
		if ref == sa.ARN {
			onA = append(onA, r)
		}
		if state == "ACTIVE" {
			active = append(active, r)
			if ref == sa.ARN {
				activeOnA = append(activeOnA, r)
			}
		}
	}
	// The same reference from another owner's resource and another kind.
	mustCreate(t, s, newRes(owner2, kIng, "x", "ACTIVE", sa.ARN))
	mustCreate(t, s, newRes(owner1, kComp, "c", "ACTIVE", sa.ARN))

	list := func(q store.ResourceQuery) []*store.Resource {
		t.Helper()
		rs, err := s.ListResources(ctx, q)
		if err != nil {
			t.Fatalf("ListResources(%+v): %v", q, err)
		}
		return rs
	}
	base := store.ResourceQuery{Kind: kIng, Owner: owner1}

	q := base
	q.Ref = sa.ARN
	checkARNs(t, "by ref", list(q), onA...)
	q.Limit = 2
	checkARNs(t, "by ref, page 1", list(q), onA[:3]...)
	q.After = onA[1].Seq
	checkARNs(t, "by ref, page 2", list(q), onA[2:]...)

	q = base
	q.State = "ACTIVE"
	checkARNs(t, "by state", list(q), active...)
	q.Limit = 1
	checkARNs(t, "by state, page 1", list(q), active[:2]...)
	q.After = active[0].Seq
	checkARNs(t, "by state, page 2", list(q), active[1:3]...)

	q = base
	q.Ref, q.State = sa.ARN, "ACTIVE"
	checkARNs(t, "by ref and state", list(q), activeOnA...)

	q = base
	q.Ref = "arn:nobody"
	checkARNs(t, "by unknown ref", list(q))
	q = base
	q.State = "NOPE"
	checkARNs(t, "by unknown state", list(q))
}

func testCountResources(t *testing.T, s store.Store) {
	count := func(kind, owner string, want int) {
		t.Helper()
		n, err := s.CountResources(ctx, kind, owner)
		if err != nil || n != want {
			t.Fatalf("CountResources(%s, %s) = %d, %v; want %d", kind, owner, n, err, want)
		}
	}
	count(kStage, owner1, 0)
	for i := range 3 {
		mustCreate(t, s, newRes(owner1, kStage, fmt.Sprint(i), ""))
	}
	mustCreate(t, s, newRes(owner2, kStage, "x", ""))
	mustCreate(t, s, newRes(owner1, kEnc, "e", ""))
	count(kStage, owner1, 3)
	count(kStage, owner2, 1)
	count(kEnc, owner1, 1)
	count(kEnc, owner2, 0)
	if err := s.DeleteResource(ctx, arn(owner1, kStage, "1"), noCheck); err != nil {
		t.Fatal(err)
	}
	count(kStage, owner1, 2)
}

func checkSession(t *testing.T, got, want *store.StageSession) {
	t.Helper()
	if got.Seq != want.Seq || got.StageARN != want.StageARN || got.SessionID != want.SessionID {
		t.Errorf("session = {%d %s %s}, want {%d %s %s}", got.Seq, got.StageARN, got.SessionID,
			want.Seq, want.StageARN, want.SessionID)
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

func testSettings(t *testing.T, s store.Store) {
	_, err := s.GetSetting(ctx, "signing-key")
	wantErr(t, "GetSetting of missing", err, store.ErrNotFound)

	v, err := s.PutSettingIfAbsent(ctx, "signing-key", []byte("first"))
	if err != nil || string(v) != "first" {
		t.Fatalf("PutSettingIfAbsent = %q, %v; want first", v, err)
	}
	v, err = s.PutSettingIfAbsent(ctx, "signing-key", []byte("second"))
	if err != nil || string(v) != "first" {
		t.Fatalf("PutSettingIfAbsent over existing = %q, %v; want first", v, err)
	}
	v, err = s.GetSetting(ctx, "signing-key")
	if err != nil || string(v) != "first" {
		t.Fatalf("GetSetting = %q, %v; want first", v, err)
	}
	bin := []byte{0, 1, 2, 0xff, 0xfe, 0}
	if v, err := s.PutSettingIfAbsent(ctx, "binary", bin); err != nil || !bytes.Equal(v, bin) {
		t.Fatalf("PutSettingIfAbsent(binary) = %x, %v", v, err)
	}
	if v, err := s.GetSetting(ctx, "binary"); err != nil || !bytes.Equal(v, bin) {
		t.Fatalf("GetSetting(binary) = %x, %v", v, err)
	}
	_, err = s.GetSetting(ctx, "other")
	wantErr(t, "GetSetting of other", err, store.ErrNotFound)
}

func testSettingsConcurrent(t *testing.T, s store.Store) {
	const n = 10
	got := make([][]byte, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			v, err := s.PutSettingIfAbsent(ctx, "k", []byte(fmt.Sprint(i)))
			if err != nil {
				t.Errorf("PutSettingIfAbsent: %v", err)
			}
			got[i] = v
		})
	}
	close(start)
	wg.Wait()
	stored, err := s.GetSetting(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if !bytes.Equal(v, stored) {
			t.Errorf("caller %d got %q, stored %q", i, v, stored)
		}
	}
}

func outboxEntry(sink, partition string, n int, at time.Time) *store.OutboxEntry {
	return &store.OutboxEntry{
		Sink: sink, Partition: partition, EventID: fmt.Sprintf("ev-%s-%d", partition, n),
		Doc: []byte(fmt.Sprintf(`{"n":%d}`, n)), NextAttempt: at, CreatedAt: at,
	}
}

func checkEntries(t *testing.T, what string, got []*store.OutboxEntry, want ...*store.OutboxEntry) {
	t.Helper()
	if len(got) != len(want) {
		var ids []string
		for _, g := range got {
			ids = append(ids, g.EventID)
		}
		t.Fatalf("%s: %d entries %q, want %d", what, len(got), ids, len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.Sink != w.Sink || g.Partition != w.Partition || g.EventID != w.EventID ||
			!bytes.Equal(g.Doc, w.Doc) || g.Attempts != w.Attempts || g.LastError != w.LastError {
			t.Errorf("%s: entry %d = {%d %s %s %s %s %d %q}, want {%d %s %s %s %s %d %q}", what, i,
				g.Seq, g.Sink, g.Partition, g.EventID, g.Doc, g.Attempts, g.LastError,
				w.Seq, w.Sink, w.Partition, w.EventID, w.Doc, w.Attempts, w.LastError)
		}
		checkTime(t, what+" NextAttempt", g.NextAttempt, w.NextAttempt)
		checkTime(t, what+" CreatedAt", g.CreatedAt, w.CreatedAt)
	}
}

func pending(t *testing.T, s store.Store, sink string, now time.Time, limit int) ([]*store.OutboxEntry, time.Time) {
	t.Helper()
	ready, next, err := s.PendingEvents(ctx, sink, now, limit)
	if err != nil {
		t.Fatalf("PendingEvents(%s): %v", sink, err)
	}
	return ready, next
}

func counts(t *testing.T, s store.Store) map[string]int {
	t.Helper()
	c, err := s.CountEvents(ctx)
	if err != nil {
		t.Fatalf("CountEvents: %v", err)
	}
	return c
}

func testOutbox(t *testing.T, s store.Store) {
	if got, next := pending(t, s, "w1", ts(0), 0); len(got) != 0 || !next.IsZero() {
		t.Fatalf("empty outbox: %d entries, next %v", len(got), next)
	}
	if c := counts(t, s); len(c) != 0 {
		t.Fatalf("CountEvents of an empty outbox: %v", c)
	}
	a1, b1, a2 := outboxEntry("w1", "a", 1, ts(0)), outboxEntry("w1", "b", 1, ts(0)), outboxEntry("w1", "a", 2, ts(0))
	other := outboxEntry("w2", "a", 1, ts(0))
	if err := s.EnqueueEvents(ctx, a1, b1, a2, other); err != nil {
		t.Fatal(err)
	}
	if a1.Seq <= 0 || b1.Seq <= a1.Seq || a2.Seq <= b1.Seq || other.Seq <= a2.Seq {
		t.Fatalf("Seqs not increasing: %d %d %d %d", a1.Seq, b1.Seq, a2.Seq, other.Seq)
	}
	if err := s.EnqueueEvents(ctx); err != nil {
		t.Fatalf("EnqueueEvents of nothing: %v", err)
	}
	if c := counts(t, s); c["w1"] != 3 || c["w2"] != 1 || len(c) != 2 {
		t.Fatalf("CountEvents = %v", c)
	}

	// One entry per partition, the oldest, in Seq order; per sink.
	got, next := pending(t, s, "w1", ts(0), 0)
	checkEntries(t, "PendingEvents(w1)", got, a1, b1)
	if !next.IsZero() {
		t.Errorf("next = %v with nothing deferred", next)
	}
	got, _ = pending(t, s, "w1", ts(0), 1)
	checkEntries(t, "PendingEvents(w1, limit 1)", got, a1)
	got, _ = pending(t, s, "w2", ts(0), 0)
	checkEntries(t, "PendingEvents(w2)", got, other)
	got, _ = pending(t, s, "nobody", ts(0), 0)
	checkEntries(t, "PendingEvents(nobody)", got)
	// Not yet due: an entry whose NextAttempt is after now.
	got, next = pending(t, s, "w1", ts(0).Add(-time.Second), 0)
	checkEntries(t, "PendingEvents before the entries are due", got)
	checkTime(t, "next", next, ts(0))

	// A failed delivery holds its partition back until it is due again.
	if err := s.DeferEvent(ctx, "w1", a1.Seq, ts(30), "HTTP 503"); err != nil {
		t.Fatal(err)
	}
	a1.Attempts, a1.NextAttempt, a1.LastError = 1, ts(30), "HTTP 503"
	got, next = pending(t, s, "w1", ts(1), 0)
	checkEntries(t, "PendingEvents with a deferred", got, b1)
	checkTime(t, "next", next, ts(30))
	if err := s.DeferEvent(ctx, "w1", a1.Seq, ts(40), "timeout"); err != nil {
		t.Fatal(err)
	}
	a1.Attempts, a1.NextAttempt, a1.LastError = 2, ts(40), "timeout"
	got, _ = pending(t, s, "w1", ts(40), 0)
	checkEntries(t, "PendingEvents once due", got, a1, b1)
	wantErr(t, "DeferEvent of another sink's entry", s.DeferEvent(ctx, "w2", a1.Seq, ts(1), ""), store.ErrNotFound)
	wantErr(t, "DeferEvent of a missing entry", s.DeferEvent(ctx, "w1", 1<<40, ts(1), ""), store.ErrNotFound)

	// Deleting the head offers the next entry of its partition.
	if err := s.DeleteEvents(ctx, "w1", a1.Seq, b1.Seq, 1<<40); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteEvents(ctx, "w2", a2.Seq); err != nil { // another sink's: ignored
		t.Fatal(err)
	}
	if err := s.DeleteEvents(ctx, "w1"); err != nil {
		t.Fatalf("DeleteEvents of nothing: %v", err)
	}
	got, _ = pending(t, s, "w1", ts(0), 0)
	checkEntries(t, "PendingEvents after deletes", got, a2)
	if c := counts(t, s); c["w1"] != 1 || c["w2"] != 1 {
		t.Fatalf("CountEvents after deletes = %v", c)
	}
	if err := s.DeleteEvents(ctx, "w1", a2.Seq); err != nil {
		t.Fatal(err)
	}
	if c := counts(t, s); c["w1"] != 0 || c["w2"] != 1 {
		t.Fatalf("CountEvents after the last delete = %v", c)
	}
}

func testOutboxOrderPerPartition(t *testing.T, s store.Store) {
	var want []*store.OutboxEntry
	for i := range 20 {
		e := outboxEntry("w", fmt.Sprintf("p%d", i%3), i, ts(0))
		want = append(want, e)
	}
	if err := s.EnqueueEvents(ctx, want...); err != nil {
		t.Fatal(err)
	}
	// Draining by repeatedly delivering what is pending yields every entry
	// once, each partition in its order.
	var got []*store.OutboxEntry
	for round := 0; len(got) < len(want); round++ {
		if round > len(want) {
			t.Fatalf("no progress after %d rounds", round)
		}
		ready, _ := pending(t, s, "w", ts(0), 2)
		var seqs []int64
		for _, e := range ready {
			got = append(got, e)
			seqs = append(seqs, e.Seq)
		}
		if err := s.DeleteEvents(ctx, "w", seqs...); err != nil {
			t.Fatal(err)
		}
	}
	last := map[string]int64{}
	seen := map[int64]bool{}
	for _, e := range got {
		if seen[e.Seq] {
			t.Fatalf("entry %d offered twice", e.Seq)
		}
		seen[e.Seq] = true
		if e.Seq <= last[e.Partition] {
			t.Fatalf("partition %s: entry %d after %d", e.Partition, e.Seq, last[e.Partition])
		}
		last[e.Partition] = e.Seq
	}
}

func testOutboxWithFacts(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	missing := arn(owner1, kStage, "nope")
	n := 0
	entry := func() *store.OutboxEntry { n++; return outboxEntry("w", stage.ARN, n, ts(0)) }
	total := func() int { t.Helper(); return counts(t, s)["w"] }

	// Failures write no entries.
	wantErr(t, "StartStageSession on a missing stage",
		s.StartStageSession(ctx, &store.StageSession{StageARN: missing, SessionID: "st-1", StartTime: ts(0)}, entry()), store.ErrNotFound)
	wantErr(t, "AddParticipantEvent in a missing session",
		s.AddParticipantEvent(ctx, &store.ParticipantEvent{StageARN: stage.ARN, SessionID: "st-1", ParticipantID: "p", EventTime: ts(0)}, entry()), store.ErrNotFound)
	wantErr(t, "EndStageSession of a missing session", s.EndStageSession(ctx, stage.ARN, "st-1", ts(1), entry()), store.ErrNotFound)
	if got := total(); got != 0 {
		t.Fatalf("%d outbox entries written by failed writes", got)
	}
	startSession(t, s, stage.ARN, "st-0")
	wantErr(t, "StartStageSession of an existing session",
		s.StartStageSession(ctx, &store.StageSession{StageARN: stage.ARN, SessionID: "st-0", StartTime: ts(0)}, entry()), store.ErrAlreadyExists)
	if got := total(); got != 0 {
		t.Fatalf("%d outbox entries written by a failed StartStageSession", got)
	}

	// Successes write them, in the order of the writes.
	var want []*store.OutboxEntry
	e1, e2 := entry(), entry()
	if err := s.StartStageSession(ctx, &store.StageSession{StageARN: stage.ARN, SessionID: "st-1", StartTime: ts(0)}, e1, e2); err != nil {
		t.Fatal(err)
	}
	want = append(want, e1, e2)
	e3 := entry()
	if err := s.AddParticipantEvent(ctx, &store.ParticipantEvent{StageARN: stage.ARN, SessionID: "st-1", ParticipantID: "p", EventTime: ts(1)}, e3); err != nil {
		t.Fatal(err)
	}
	want = append(want, e3)
	if err := s.AddParticipantEvent(ctx, &store.ParticipantEvent{StageARN: stage.ARN, SessionID: "st-1", ParticipantID: "p", EventTime: ts(2)}); err != nil {
		t.Fatalf("AddParticipantEvent without outbox entries: %v", err)
	}
	e4 := entry()
	if err := s.EndStageSession(ctx, stage.ARN, "st-1", ts(3), e4); err != nil {
		t.Fatal(err)
	}
	want = append(want, e4)
	if got := total(); got != len(want) {
		t.Fatalf("%d outbox entries, want %d", got, len(want))
	}
	var got []*store.OutboxEntry
	for range want {
		ready, _ := pending(t, s, "w", ts(0), 0)
		if len(ready) != 1 {
			t.Fatalf("%d pending entries of one partition, want 1", len(ready))
		}
		got = append(got, ready[0])
		if err := s.DeleteEvents(ctx, "w", ready[0].Seq); err != nil {
			t.Fatal(err)
		}
	}
	for i := range want {
		if got[i].EventID != want[i].EventID || !bytes.Equal(got[i].Doc, want[i].Doc) {
			t.Errorf("entry %d = %s %s, want %s %s", i, got[i].EventID, got[i].Doc, want[i].EventID, want[i].Doc)
		}
	}
	// The session and events were written too.
	if ss, err := s.GetStageSession(ctx, stage.ARN, "st-1"); err != nil || ss.EndTime == nil {
		t.Fatalf("session: %+v, %v", ss, err)
	}
	if evs, err := s.ListParticipantEvents(ctx, stage.ARN, "st-1", "p", store.Page{}); err != nil || len(evs) != 2 {
		t.Fatalf("participant events: %d, %v", len(evs), err)
	}
}

func testOutboxOutlivesStage(t *testing.T, s store.Store) {
	stage := mustCreate(t, s, newRes(owner1, kStage, "a", ""))
	if err := s.StartStageSession(ctx, &store.StageSession{StageARN: stage.ARN, SessionID: "st-1", StartTime: ts(0)},
		outboxEntry("w", stage.ARN, 1, ts(0))); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteResource(ctx, stage.ARN, noCheck); err != nil {
		t.Fatal(err)
	}
	ready, _ := pending(t, s, "w", ts(0), 0)
	if len(ready) != 1 || ready[0].Partition != stage.ARN {
		t.Fatalf("outbox after deleting the stage: %d entries", len(ready))
	}
}
