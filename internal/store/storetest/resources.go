package storetest

// The resource methods: create (sequence, duplicates, quota), get, update, delete
// with referrers, lists and counts.

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rostrum-dev/rostrum/internal/store"
)

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
