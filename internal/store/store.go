// Package store persists Rostrum's state. The Store interface is what the IVS
// service needs; sqlite (embedded, the default) implements it, and a
// PostgreSQL implementation runs the same suite in storetest.
//
// Resources (stages, encoder/storage/ingest configurations, public keys,
// compositions) are stored as the JSON document the API returns, owned by the
// service, beside the few columns that queries need (kind, owner, references,
// state). The store never interprets a document: the API shapes are the
// domain model, and keeping them whole means a new optional member of the
// model needs no schema migration.
package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors every implementation returns (wrapped or not).
var (
	ErrNotFound      = errors.New("store: not found")
	ErrAlreadyExists = errors.New("store: already exists")
	ErrQuotaExceeded = errors.New("store: quota exceeded")
	// ErrNodeAlive: CloseNodeSessions found a heartbeat newer than the
	// caller's staleness cut-off.
	ErrNodeAlive = errors.New("store: node is alive")
)

// Resource is one API resource.
type Resource struct {
	ARN   string
	Kind  string // ARN resource type: "stage", "encoder-configuration", …
	Owner string // "region:account", the ARN's scope; lists never cross owners
	Seq   int64  // assigned on create; increasing; the stable list order
	// State is a resource state that lists filter on (an ingest
	// configuration's ACTIVE/INACTIVE, a composition's state), else "".
	State string
	// Refs are the ARNs this resource depends on: a stage's recording storage
	// configuration, an ingest configuration's stage, a composition's stage
	// and encoder and storage configurations. Deletes see who refers to a
	// resource; lists filter by reference.
	Refs []string
	// ActiveSessionID is a stage's running session, maintained by the
	// session methods.
	ActiveSessionID string
	// Node is the node (process) that runs what the resource stands for (a
	// composition's media), "" for resources that run nowhere. Set on
	// create; UpdateResource keeps it.
	Node string
	// ClientToken is the idempotency token the resource was created with
	// (StartComposition's idempotencyToken), or "". Among the resources of
	// one kind and owner that exist, a token is unique: CreateResource
	// refuses a second with ErrAlreadyExists. Set on create only.
	ClientToken string
	Doc         []byte // the API document (JSON), owned by the service
	CreatedAt   time.Time
}

// ResourceQuery selects resources of one kind and owner, in Seq order.
type ResourceQuery struct {
	Kind  string
	Owner string
	Ref   string // only resources that refer to this ARN
	State string // only resources in this state
	// ClientToken: only the resource created with this idempotency token.
	ClientToken string
	Page
}

// ResourceScan selects resources of one kind across every owner, in Seq
// order, for the server's own housekeeping (a node's leftovers, the sweep
// of ended compositions); never for an API list, which stays in its owner.
type ResourceScan struct {
	Kind   string
	Node   string   // only resources run by this node; "" is any node
	States []string // only resources in one of these states; empty is any
	Page
}

// Page asks for at most Limit rows after the row with sequence After
// (0 = from the start). Implementations return up to Limit+1 rows so that the
// caller knows whether another page follows.
type Page struct {
	After int64
	Limit int
}

// StageSession is one session of a stage: from its first participant joining
// until the last one left.
type StageSession struct {
	Seq       int64
	StageARN  string
	SessionID string
	StartTime time.Time
	EndTime   *time.Time // nil while active
	// NodeID is the Rostrum node (process) whose media plane runs the
	// session. If that node stops without ending it (kill -9, a crash, a
	// lost machine), CloseNodeSessions ends it on the node's behalf.
	NodeID string
}

// Node is a Rostrum node as its heartbeats tell: the last time it was
// known to be alive.
type Node struct {
	ID        string
	Heartbeat time.Time
}

// OpenSession is an active session of a node that is being closed, with
// what closing it needs to know.
type OpenSession struct {
	Session *StageSession
	// End is when the session ends: the node's last sign of life, the
	// latest of its last heartbeat, the session's start and the times of
	// the session's events.
	End time.Time
	// Connected are the session's participants whose State is CONNECTED,
	// in Seq order; Events are all their events, in Seq order.
	Connected []*Participant
	Events    []*ParticipantEvent
}

// SessionClosing is what CloseNodeSessions writes besides the sessions'
// ends: participant rows to insert or replace (as PutParticipant does),
// events to append and outbox entries, each under one of the sessions
// being closed.
type SessionClosing struct {
	Participants []*Participant
	Events       []*ParticipantEvent
	Outbox       []*OutboxEntry
	// Replicas are replication records to insert or replace (as
	// PutParticipantReplica does): the replications of the sessions'
	// participants, which end with them. Their source stage must be the
	// stage of a session being closed.
	Replicas []*ParticipantReplica
}

// Participant is one participant of a stage session; Doc is the API's
// Participant document, the columns are what ListParticipants filters on.
type Participant struct {
	Seq            int64
	StageARN       string
	SessionID      string
	ParticipantID  string
	UserID         string
	State          string // CONNECTED | DISCONNECTED
	Published      bool
	RecordingState string
	FirstJoinTime  time.Time
	Doc            []byte
}

// ParticipantQuery selects participants of one session; at most one filter
// is set (the API allows only one).
type ParticipantQuery struct {
	StageARN       string
	SessionID      string
	UserID         *string
	Published      *bool
	State          *string
	RecordingState *string
	Page
}

// ParticipantEvent is one event of a participant (JOINED, PUBLISH_STARTED, …);
// Doc is the API's Event document.
type ParticipantEvent struct {
	Seq           int64
	StageARN      string
	SessionID     string
	ParticipantID string
	EventTime     time.Time
	Doc           []byte
}

// ParticipantReplica is one replication of a participant into another stage.
type ParticipantReplica struct {
	Seq                 int64
	SourceStageARN      string
	ParticipantID       string
	DestinationStageARN string
	State               string // ACTIVE | STOPPED
	Doc                 []byte
}

// OutboxEntry is one event waiting in the outbox for delivery to one sink.
// Entries of one sink and Partition (a stage) are delivered in Seq order.
type OutboxEntry struct {
	Seq       int64 // assigned on insert; increasing
	Sink      string
	Partition string
	EventID   string
	Doc       []byte // the event document, as delivered
	// Attempts is how many deliveries failed so far; NextAttempt is when
	// the next may start; LastError says why the last one failed.
	Attempts    int
	NextAttempt time.Time
	LastError   string
	CreatedAt   time.Time
}

// Store is everything the IVS service persists. Every method that returns
// without error has made its write durable. Times are kept to the
// millisecond and read back in UTC. Rows under a stage or session (sessions,
// participants, events, replicas, revocations) need their stage or session to
// exist (else ErrNotFound) and are deleted with their stage. Callbacks given
// to UpdateResource and DeleteResource run inside the write transaction and
// must not call the Store.
type Store interface {
	// CreateResource inserts r and sets r.Seq and r.CreatedAt. When limit > 0
	// and the owner already has limit resources of r.Kind, it inserts nothing
	// and returns ErrQuotaExceeded; the count and insert are one transaction.
	CreateResource(ctx context.Context, r *Resource, limit int) error
	GetResource(ctx context.Context, arn string) (*Resource, error)
	// UpdateResource reads the resource, lets fn change it (Doc, State,
	// Refs) and writes it back, atomically. An error from fn aborts the
	// update and is returned as is.
	UpdateResource(ctx context.Context, arn string, fn func(r *Resource) error) (*Resource, error)
	// DeleteResource deletes the resource unless check, given the resource
	// and every resource that refers to it, returns an error (returned as
	// is); atomically.
	DeleteResource(ctx context.Context, arn string, check func(r *Resource, referrers []*Resource) error) error
	ListResources(ctx context.Context, q ResourceQuery) ([]*Resource, error)
	ScanResources(ctx context.Context, q ResourceScan) ([]*Resource, error)
	CountResources(ctx context.Context, kind, owner string) (int, error)

	// StartStageSession records a new active session of a stage and sets the
	// stage's ActiveSessionID; EndStageSession sets its end time and clears
	// the stage's ActiveSessionID if it is still this session.
	//
	// Both, like AddParticipantEvent, insert the outbox entries they are
	// given in the same transaction as their own write: all or none.
	StartStageSession(ctx context.Context, s *StageSession, outbox ...*OutboxEntry) error
	EndStageSession(ctx context.Context, stageARN, sessionID string, end time.Time, outbox ...*OutboxEntry) error
	GetStageSession(ctx context.Context, stageARN, sessionID string) (*StageSession, error)
	// ListStageSessions returns a stage's sessions newest first: Page.After
	// is the Seq of the last session of the previous page.
	ListStageSessions(ctx context.Context, stageARN string, p Page) ([]*StageSession, error)

	// PutParticipant inserts or replaces a participant of a session (keyed
	// by stage, session and participant id), keeping its Seq on replace.
	PutParticipant(ctx context.Context, p *Participant) error
	GetParticipant(ctx context.Context, stageARN, sessionID, participantID string) (*Participant, error)
	ListParticipants(ctx context.Context, q ParticipantQuery) ([]*Participant, error)

	AddParticipantEvent(ctx context.Context, e *ParticipantEvent, outbox ...*OutboxEntry) error
	// DeleteEndedSessions enforces retention: it deletes rows of sessions
	// that ended before endedBefore, at most limit rows in one
	// transaction (so that it never holds the write lock long): their
	// events first, then their participants, then the sessions
	// themselves once nothing is left under them. Active sessions are
	// never deleted. It returns how many rows it deleted; fewer than
	// limit means nothing that had expired when it ran is left.
	DeleteEndedSessions(ctx context.Context, endedBefore time.Time, limit int) (int, error)
	// ListParticipantEvents returns one participant's events in order.
	ListParticipantEvents(ctx context.Context, stageARN, sessionID, participantID string, p Page) ([]*ParticipantEvent, error)

	PutParticipantReplica(ctx context.Context, r *ParticipantReplica) error
	ListParticipantReplicas(ctx context.Context, sourceStageARN, participantID string, p Page) ([]*ParticipantReplica, error)

	// RevokeParticipant marks a participant id of a stage as disconnected for
	// good: its token can never join again.
	RevokeParticipant(ctx context.Context, stageARN, participantID string, at time.Time) error
	IsParticipantRevoked(ctx context.Context, stageARN, participantID string) (bool, error)

	// The event outbox: events accepted for delivery, one entry per sink,
	// kept until delivered. Entries do not belong to a stage: they outlive
	// its deletion.
	//
	// EnqueueEvents inserts entries (setting Seq), atomically.
	EnqueueEvents(ctx context.Context, entries ...*OutboxEntry) error
	// PendingEvents returns the entries of a sink that may be delivered
	// now: the oldest entry of each partition, if its NextAttempt is not
	// after now; in Seq order, at most limit (<= 0: no limit). next is the
	// earliest NextAttempt of the other partitions' oldest entries (zero
	// when there are none): when to look again.
	PendingEvents(ctx context.Context, sink string, now time.Time, limit int) (ready []*OutboxEntry, next time.Time, err error)
	// DeleteEvents deletes a sink's entries by Seq (delivered or given up);
	// missing ones are ignored.
	DeleteEvents(ctx context.Context, sink string, seqs ...int64) error
	// DeferEvent records a failed delivery: Attempts grows by one,
	// NextAttempt and LastError are set. ErrNotFound if the entry is gone.
	DeferEvent(ctx context.Context, sink string, seq int64, next time.Time, lastErr string) error
	// CountEvents returns how many entries wait, per sink.
	CountEvents(ctx context.Context) (map[string]int, error)

	// Nodes and their heartbeats: each running node records that it is
	// alive every few seconds, and owns the sessions it starts
	// (StageSession.NodeID). A node that stops without ending its
	// sessions (its process killed, its machine lost) leaves them
	// active; CloseNodeSessions ends them, run by the node itself when it
	// starts again or by a peer that sees its heartbeat stop.
	//
	// Heartbeat records that the node is alive at `at` (a heartbeat
	// older than the recorded one changes nothing).
	Heartbeat(ctx context.Context, nodeID string, at time.Time) error
	// ListNodes returns every node with a recorded heartbeat, by id.
	ListNodes(ctx context.Context) ([]*Node, error)
	// CloseNodeSessions ends every active session owned by nodeID, in one
	// transaction. Each session ends at its OpenSession.End; the stage's
	// ActiveSessionID is cleared if it is that session. fn, given the
	// sessions (in Seq order), returns what else to write: the connected
	// participants' new rows, their final events, the outbox entries of
	// it all; an error from fn aborts everything and is returned as is.
	// fn runs inside the transaction and must not call the Store; nil
	// just ends the sessions.
	//
	// When aliveSince is not zero, the node must look dead: if its
	// heartbeat is at or after aliveSince, nothing is written and
	// ErrNodeAlive is returned (a peer that read an old heartbeat does not
	// close the sessions of a node that has since beaten again). A node
	// closing its own previous run passes the zero time. On success the
	// node's heartbeat is removed; it returns how many sessions it ended.
	CloseNodeSessions(ctx context.Context, nodeID string, aliveSince time.Time, fn func(open []*OpenSession) (*SessionClosing, error)) (int, error)

	// Settings hold server state such as the token signing key.
	// PutSettingIfAbsent stores value unless key exists, and returns the
	// stored value either way (so concurrent first starts agree).
	GetSetting(ctx context.Context, key string) ([]byte, error)
	PutSettingIfAbsent(ctx context.Context, key string, value []byte) ([]byte, error)

	Close() error
}
