package ivs

import (
	"context"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/store"
)

// NodeID is the node this service records as the owner of the sessions
// it starts.
func (s *Service) NodeID() string { return s.cfg.NodeID }

// Heartbeat records that this node is alive now.
func (s *Service) Heartbeat(ctx context.Context) error {
	return s.store.Heartbeat(ctx, s.cfg.NodeID, s.nowMillis())
}

// CloseNodeSessions ends the sessions a node left active when it stopped
// without ending them (its process killed, its machine lost), as the media
// plane would have had everyone left: each connected participant's
// subscriptions and publishing stop (SUBSCRIBE_STOPPED, PUBLISH_STOPPED),
// then it leaves (LEFT, state DISCONNECTED), then the session ends; every
// one of these facts makes the event it makes on a live stage. All of it
// is dated the node's last sign of life and written in one store
// transaction with the events' outbox entries.
//
// A node closes what its own previous run left when it starts (aliveSince
// zero); a peer closes a node whose heartbeat stopped before aliveSince
// (store.ErrNodeAlive if it has beaten since). It returns how many
// sessions it ended.
func (s *Service) CloseNodeSessions(ctx context.Context, nodeID string, aliveSince time.Time) (int, error) {
	var prepared []*events.Prepared
	var closed []*store.OpenSession
	n, err := s.store.CloseNodeSessions(ctx, nodeID, aliveSince, func(open []*store.OpenSession) (*store.SessionClosing, error) {
		prepared, closed = nil, open
		w := &store.SessionClosing{}
		for _, o := range open {
			prepared = append(prepared, s.closeSession(ctx, o, w)...)
		}
		return w, nil
	})
	for _, p := range prepared {
		p.Done(err)
	}
	if err != nil {
		return n, err
	}
	// The sessions are closed whatever happens here: a failure leaves a
	// replication's record ACTIVE, and is logged.
	for _, o := range closed {
		if err := s.stopAwayReplications(ctx, o); err != nil {
			s.log.WarnContext(ctx, "ending the replications of a closed session", "stage", o.Session.StageARN, "session", o.Session.SessionID, "err", err)
		}
	}
	return n, nil
}

// stopAwayReplications ends, after its session was closed, the replications
// of participants who were away from it when the node stopped: a source
// that had stopped publishing, its replicas waiting for it within their
// reconnect window. Closing saw only the connected participants.
func (s *Service) stopAwayReplications(ctx context.Context, o *store.OpenSession) error {
	ss := o.Session
	var after int64
	for {
		rows, err := s.store.ListParticipants(ctx, store.ParticipantQuery{StageARN: ss.StageARN, SessionID: ss.SessionID, Page: store.Page{After: after, Limit: 100}})
		if err != nil {
			return err
		}
		for _, row := range rows {
			after = row.Seq
			doc, err := decodeRow[api.Participant](row.Doc)
			if err != nil || api.Val(doc.ReplicationType) != api.ReplicationTypeSource || api.Val(doc.ReplicationState) != api.ReplicationStateActive {
				continue
			}
			if err := s.stopSourceReplications(ctx, o, row.UserID, doc); err != nil {
				return err
			}
		}
		if len(rows) <= 100 {
			return nil
		}
	}
}

// stopSourceReplications ends the active replications of one source of a
// closed session: REPLICATION_STOPPED at the session's end, the records
// and the participant STOPPED.
func (s *Service) stopSourceReplications(ctx context.Context, o *store.OpenSession, userID string, doc *api.Participant) error {
	ss, pid := o.Session, api.Val(doc.ParticipantId)
	var after int64
	for {
		rows, err := s.store.ListParticipantReplicas(ctx, ss.StageARN, pid, store.Page{After: after, Limit: 100})
		if err != nil {
			return err
		}
		for _, row := range rows {
			after = row.Seq
			r, err := decodeRow[api.ParticipantReplica](row.Doc)
			if err != nil || r.ReplicationState != api.ReplicationStateActive || r.SourceSessionId != ss.SessionID {
				continue
			}
			r.ReplicationState = api.ReplicationStateStopped
			if err := s.RecordParticipantReplica(ctx, r); err != nil {
				return err
			}
			e := &api.Event{Name: api.Ptr(api.EventNameReplicationStopped), ParticipantId: api.Ptr(pid), EventTime: api.Ptr(o.End),
				DestinationStageArn: api.Ptr(r.DestinationStageArn), DestinationSessionId: api.Ptr(r.DestinationSessionId)}
			if err := s.recordEvent(ctx, ss.StageARN, ss.SessionID, userID, e); err != nil {
				return err
			}
		}
		if len(rows) <= 100 {
			break
		}
	}
	doc.ReplicationState = api.Ptr(api.ReplicationStateStopped)
	return s.RecordParticipant(ctx, ss.StageARN, ss.SessionID, doc)
}

// closeSession adds to w what closing one session writes and returns the
// prepared events, in order.
func (s *Service) closeSession(ctx context.Context, o *store.OpenSession, w *store.SessionClosing) []*events.Prepared {
	ss, end := o.Session, o.End
	var prepared []*events.Prepared
	event := func(p *store.Participant, name, remote string) {
		e := &api.Event{Name: api.Ptr(name), ParticipantId: api.Ptr(p.ParticipantID), EventTime: api.Ptr(end)}
		if remote != "" {
			e.RemoteParticipantId = api.Ptr(remote)
		}
		w.Events = append(w.Events, &store.ParticipantEvent{
			StageARN: ss.StageARN, SessionID: ss.SessionID, ParticipantID: p.ParticipantID, EventTime: end, Doc: mustJSON(e),
		})
		pr := s.prepare(events.FromParticipantEvent(ss.StageARN, ss.SessionID, p.UserID, e))
		w.Outbox = append(w.Outbox, pr.Entries()...)
		prepared = append(prepared, pr)
	}
	media := s.openMedia(ctx, o)
	// As on a live stage that closes: every media connection first (the
	// subscriptions before the publishing they receive), then the leaves,
	// then the session's end.
	for _, p := range o.Connected {
		for _, remote := range media[p.ParticipantID].subscribed {
			event(p, "SUBSCRIBE_STOPPED", remote)
		}
	}
	for _, p := range o.Connected {
		if media[p.ParticipantID].publishing {
			event(p, "PUBLISH_STOPPED", "")
		}
	}
	// A source's replications end with its publishing: a REPLICATION_STOPPED
	// event and a STOPPED record each.
	for _, p := range o.Connected {
		for _, r := range media[p.ParticipantID].replicas {
			e := &api.Event{Name: api.Ptr(api.EventNameReplicationStopped), ParticipantId: api.Ptr(p.ParticipantID), EventTime: api.Ptr(end),
				DestinationStageArn: api.Ptr(r.DestinationStageArn), DestinationSessionId: api.Ptr(r.DestinationSessionId)}
			w.Events = append(w.Events, &store.ParticipantEvent{
				StageARN: ss.StageARN, SessionID: ss.SessionID, ParticipantID: p.ParticipantID, EventTime: end, Doc: mustJSON(e),
			})
			pr := s.prepare(events.FromParticipantEvent(ss.StageARN, ss.SessionID, p.UserID, e))
			w.Outbox = append(w.Outbox, pr.Entries()...)
			prepared = append(prepared, pr)
			r.SourceStageArn, r.SourceSessionId, r.ParticipantId = ss.StageARN, ss.SessionID, p.ParticipantID
			r.ReplicationState = api.ReplicationStateStopped
			w.Replicas = append(w.Replicas, &store.ParticipantReplica{
				SourceStageARN: ss.StageARN, ParticipantID: p.ParticipantID, DestinationStageARN: r.DestinationStageArn,
				State: r.ReplicationState, Doc: mustJSON(r),
			})
		}
	}
	for _, p := range o.Connected {
		event(p, "LEFT", "")
		w.Participants = append(w.Participants, s.disconnected(ctx, p))
	}
	pr := s.prepare(events.NewSessionEvent(ss.StageARN, ss.SessionID, end, false))
	w.Outbox = append(w.Outbox, pr.Entries()...)
	prepared = append(prepared, pr)
	s.log.InfoContext(ctx, "stage session ended: its node stopped without ending it",
		"stage", ss.StageARN, "session", ss.SessionID, "node", ss.NodeID, "end", end, "participants", len(o.Connected))
	return prepared
}

// media is what a participant had open when its node stopped.
type media struct {
	publishing bool
	subscribed []string // publishers, in the order subscribed
	// replicas are its active replications into other stages (only the
	// destination's stage and session are set), in the order started.
	replicas []*api.ParticipantReplica
}

// openMedia replays the connected participants' events to find what each
// was publishing and subscribed to.
func (s *Service) openMedia(ctx context.Context, o *store.OpenSession) map[string]*media {
	out := map[string]*media{}
	for _, p := range o.Connected {
		out[p.ParticipantID] = &media{}
	}
	for _, row := range o.Events {
		m := out[row.ParticipantID]
		if m == nil {
			continue
		}
		e, err := decodeRow[api.Event](row.Doc)
		if err != nil || e.Name == nil {
			s.log.WarnContext(ctx, "skipping an unreadable participant event", "stage", row.StageARN,
				"session", row.SessionID, "participant", row.ParticipantID, "err", err)
			continue
		}
		remote := api.Val(e.RemoteParticipantId)
		switch *e.Name {
		case "PUBLISH_STARTED":
			m.publishing = true
		case "PUBLISH_STOPPED":
			m.publishing = false
		case "SUBSCRIBE_STARTED":
			m.subscribed = append(removeString(m.subscribed, remote), remote)
		case "SUBSCRIBE_STOPPED":
			m.subscribed = removeString(m.subscribed, remote)
		case "REPLICATION_STARTED":
			dst := api.Val(e.DestinationStageArn)
			m.replicas = append(removeReplica(m.replicas, dst), &api.ParticipantReplica{DestinationStageArn: dst, DestinationSessionId: api.Val(e.DestinationSessionId)})
		case "REPLICATION_STOPPED":
			m.replicas = removeReplica(m.replicas, api.Val(e.DestinationStageArn))
		case "LEFT":
			// A participant that left and joined again had nothing open
			// when it rejoined.
			m.publishing, m.subscribed = false, nil
		}
	}
	return out
}

func removeReplica(list []*api.ParticipantReplica, dst string) []*api.ParticipantReplica {
	out := list[:0]
	for _, r := range list {
		if r.DestinationStageArn != dst {
			out = append(out, r)
		}
	}
	return out
}

func removeString(list []string, v string) []string {
	out := list[:0]
	for _, x := range list {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

// disconnected is a connected participant's row, DISCONNECTED.
func (s *Service) disconnected(ctx context.Context, p *store.Participant) *store.Participant {
	doc, err := decodeRow[api.Participant](p.Doc)
	if err != nil {
		// The columns still say who it was: keep that much.
		s.log.WarnContext(ctx, "rebuilding an unreadable participant record", "stage", p.StageARN,
			"session", p.SessionID, "participant", p.ParticipantID, "err", err)
		doc = &api.Participant{ParticipantId: api.Ptr(p.ParticipantID), UserId: api.Ptr(p.UserID),
			FirstJoinTime: api.Ptr(p.FirstJoinTime), Published: api.Ptr(p.Published)}
	}
	doc.State = api.Ptr("DISCONNECTED")
	// Its replication, as a source or a replica, ended with the node.
	if t := api.Val(doc.ReplicationType); t == api.ReplicationTypeSource || t == api.ReplicationTypeReplica {
		doc.ReplicationState = api.Ptr(api.ReplicationStateStopped)
	}
	q := *p
	q.State = "DISCONNECTED"
	q.Doc = mustJSON(doc)
	return &q
}
