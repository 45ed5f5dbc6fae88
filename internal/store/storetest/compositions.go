package storetest

// What compositions need of resources: the node that runs one, the
// idempotency token it was created with, and scans across owners for the
// server's housekeeping.

import (
	"sync"
	"testing"

	"github.com/rostrum-dev/rostrum/internal/store"
)

func withNode(r *store.Resource, node, token string) *store.Resource {
	r.Node, r.ClientToken = node, token
	return r
}

func testResourceNodeAndToken(t *testing.T, s store.Store) {
	r := mustCreate(t, s, withNode(newRes(owner1, kComp, "c1", "STARTING"), "node-a", "tok-1"))
	got := mustGet(t, s, r.ARN)
	checkResource(t, got, r)
	if got.Node != "node-a" || got.ClientToken != "tok-1" {
		t.Fatalf("Node, ClientToken = %q, %q; want node-a, tok-1", got.Node, got.ClientToken)
	}
	// An update keeps both, whatever fn does to them.
	up, err := s.UpdateResource(ctx, r.ARN, func(r *store.Resource) error {
		r.State, r.Node, r.ClientToken = "ACTIVE", "node-b", "other"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if up.Node != "node-a" || up.ClientToken != "tok-1" {
		t.Errorf("UpdateResource returned Node, ClientToken = %q, %q; want node-a, tok-1", up.Node, up.ClientToken)
	}
	got = mustGet(t, s, r.ARN)
	if got.State != "ACTIVE" || got.Node != "node-a" || got.ClientToken != "tok-1" {
		t.Errorf("after update: State, Node, ClientToken = %q, %q, %q; want ACTIVE, node-a, tok-1", got.State, got.Node, got.ClientToken)
	}
	rs, err := s.ListResources(ctx, store.ResourceQuery{Kind: kComp, Owner: owner1})
	if err != nil || len(rs) != 1 || rs[0].Node != "node-a" || rs[0].ClientToken != "tok-1" {
		t.Fatalf("ListResources: %v, %v", rs, err)
	}
	// Resources without them read back "".
	e := mustCreate(t, s, newRes(owner1, kEnc, "e", ""))
	if got := mustGet(t, s, e.ARN); got.Node != "" || got.ClientToken != "" {
		t.Errorf("encoder configuration: Node, ClientToken = %q, %q; want empty", got.Node, got.ClientToken)
	}
}

func testResourceClientTokenUnique(t *testing.T, s store.Store) {
	a := mustCreate(t, s, withNode(newRes(owner1, kComp, "a", "STARTING"), "n", "tok"))
	dup := withNode(newRes(owner1, kComp, "b", "STARTING"), "n", "tok")
	wantErr(t, "second resource with the token", s.CreateResource(ctx, dup, 0), store.ErrAlreadyExists)
	wantErr(t, "second resource with the token, under a quota", s.CreateResource(ctx, dup, 10), store.ErrAlreadyExists)
	if _, err := s.GetResource(ctx, dup.ARN); err == nil {
		t.Fatal("the refused resource was stored")
	}
	// The same token in another owner, or another kind, is another token;
	// no token is no token.
	mustCreate(t, s, withNode(newRes(owner2, kComp, "b", "STARTING"), "n", "tok"))
	mustCreate(t, s, withNode(newRes(owner1, kStage, "b", ""), "", "tok"))
	mustCreate(t, s, newRes(owner1, kComp, "c", "STARTING"))
	mustCreate(t, s, newRes(owner1, kComp, "d", "STARTING"))

	rs, err := s.ListResources(ctx, store.ResourceQuery{Kind: kComp, Owner: owner1, ClientToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	checkARNs(t, "ListResources by token", rs, a)
	rs, err = s.ListResources(ctx, store.ResourceQuery{Kind: kComp, Owner: owner1, ClientToken: "nope"})
	if err != nil || len(rs) != 0 {
		t.Fatalf("ListResources by an unknown token: %v, %v", arns(rs), err)
	}
	// Once the resource is gone, its token is free again.
	if err := s.DeleteResource(ctx, a.ARN, noCheck); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, withNode(newRes(owner1, kComp, "e", "STARTING"), "n", "tok"))
}

func testResourceClientTokenConcurrent(t *testing.T, s store.Store) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.CreateResource(ctx, withNode(newRes(owner1, kComp, string(rune('a'+i)), "STARTING"), "n", "same"), 0)
		}()
	}
	wg.Wait()
	created := 0
	for _, err := range errs {
		switch {
		case err == nil:
			created++
		default:
			wantErr(t, "concurrent create with one token", err, store.ErrAlreadyExists)
		}
	}
	if created != 1 {
		t.Fatalf("%d creates with one token succeeded, want 1", created)
	}
}

func testScanResources(t *testing.T, s store.Store) {
	a := mustCreate(t, s, withNode(newRes(owner1, kComp, "a", "ACTIVE"), "n1", ""))
	b := mustCreate(t, s, withNode(newRes(owner2, kComp, "b", "STARTING"), "n1", ""))
	c := mustCreate(t, s, withNode(newRes(owner1, kComp, "c", "STOPPED"), "n1", ""))
	d := mustCreate(t, s, withNode(newRes(owner2, kComp, "d", "ACTIVE"), "n2", ""))
	e := mustCreate(t, s, withNode(newRes(owner1, kComp, "e", "FAILED"), "n2", ""))
	mustCreate(t, s, withNode(newRes(owner1, kStage, "s", "ACTIVE"), "n1", ""))

	scan := func(what string, q store.ResourceScan, want ...*store.Resource) {
		t.Helper()
		rs, err := s.ScanResources(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		checkARNs(t, what, rs, want...)
	}
	scan("every composition", store.ResourceScan{Kind: kComp}, a, b, c, d, e)
	scan("node n1's live ones", store.ResourceScan{Kind: kComp, Node: "n1", States: []string{"STARTING", "ACTIVE", "STOPPING"}}, a, b)
	scan("ended ones", store.ResourceScan{Kind: kComp, States: []string{"STOPPED", "FAILED"}}, c, e)
	scan("node n2", store.ResourceScan{Kind: kComp, Node: "n2"}, d, e)
	scan("no such node", store.ResourceScan{Kind: kComp, Node: "n3"})

	// Paged like ListResources: Limit+1 rows, After a Seq.
	rs, err := s.ScanResources(ctx, store.ResourceScan{Kind: kComp, Page: store.Page{Limit: 2}})
	if err != nil {
		t.Fatal(err)
	}
	checkARNs(t, "first page", rs, a, b, c)
	scan("after the second", store.ResourceScan{Kind: kComp, Page: store.Page{After: b.Seq, Limit: 2}}, c, d, e)
	// Full rows: refs, documents.
	rs, _ = s.ScanResources(ctx, store.ResourceScan{Kind: kComp, Node: "n1", States: []string{"ACTIVE"}})
	if len(rs) == 1 {
		checkResource(t, rs[0], a)
	}
}
