// Package storetest is the conformance suite of store.Store. Every
// implementation (sqlite, PostgreSQL) runs it from its own tests, so that the
// service can rely on one behaviour whichever database is configured:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// RunShared (shared.go) runs the concurrency tests: several stores on one
// database, each with its own connections as several nodes would have,
// hammering quotas, unique keys, Seq pagination and the outbox at once.
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
//   - CloseNodeSessions touches only the node's active sessions; its
//     OpenSession.Connected are the CONNECTED participants and Events only
//     theirs. A session's end is never before its start or its last event.
//   - DeleteEndedSessions never deletes more rows than its limit in one
//     call, never touches active sessions or sessions that ended at or
//     after the cut-off, and a positive limit is required.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
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
		{"ResourceNodeAndToken", testResourceNodeAndToken},
		{"ResourceClientTokenUnique", testResourceClientTokenUnique},
		{"ResourceClientTokenConcurrent", testResourceClientTokenConcurrent},
		{"ScanResources", testScanResources},
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
		{"Heartbeats", testHeartbeats},
		{"CloseNodeSessions", testCloseNodeSessions},
		{"CloseNodeSessionsAlive", testCloseNodeSessionsAlive},
		{"CloseNodeSessionsAborts", testCloseNodeSessionsAborts},
		{"CloseNodeSessionsEnd", testCloseNodeSessionsEnd},
		{"DeleteEndedSessions", testDeleteEndedSessions},
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
