package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rostrum-dev/rostrum/internal/store"
)

// Store wraps a store.Store and observes each call's latency and errors
// (rostrum_store_operation_duration_seconds, rostrum_store_errors_total).
// Methods added to store.Store after this wrapper was written pass through
// the embedded Store unobserved until they are listed here.
func (r *Registry) Store(s store.Store) store.Store {
	r.storeOnce.Do(func() {
		r.storeDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "store", Name: "operation_duration_seconds",
			Help:    "Time a store operation took, by operation (a store.Store method).",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
		}, []string{"operation"})
		r.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "store", Name: "errors_total",
			Help: "Store operations that returned an error, by operation and error: not_found, already_exists and quota_exceeded are answers the API expects; canceled, a caller that gave up; other, a failure.",
		}, []string{"operation", "error"})
		r.reg.MustRegister(r.storeDuration, r.storeErrors)
	})
	return &observedStore{Store: s, duration: r.storeDuration, errors: r.storeErrors}
}

type observedStore struct {
	store.Store
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

func (s *observedStore) done(op string, start time.Time, err error) {
	s.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err == nil {
		return
	}
	kind := "other"
	switch {
	case errors.Is(err, store.ErrNotFound):
		kind = "not_found"
	case errors.Is(err, store.ErrAlreadyExists):
		kind = "already_exists"
	case errors.Is(err, store.ErrQuotaExceeded):
		kind = "quota_exceeded"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		kind = "canceled"
	}
	s.errors.WithLabelValues(op, kind).Inc()
}

func (s *observedStore) CreateResource(ctx context.Context, r *store.Resource, limit int) (err error) {
	defer func(start time.Time) { s.done("CreateResource", start, err) }(time.Now())
	return s.Store.CreateResource(ctx, r, limit)
}

func (s *observedStore) GetResource(ctx context.Context, arn string) (r0 *store.Resource, err error) {
	defer func(start time.Time) { s.done("GetResource", start, err) }(time.Now())
	return s.Store.GetResource(ctx, arn)
}

func (s *observedStore) UpdateResource(ctx context.Context, arn string, fn func(r *store.Resource) error) (r0 *store.Resource, err error) {
	defer func(start time.Time) { s.done("UpdateResource", start, err) }(time.Now())
	return s.Store.UpdateResource(ctx, arn, fn)
}

func (s *observedStore) DeleteResource(ctx context.Context, arn string, check func(r *store.Resource, referrers []*store.Resource) error) (err error) {
	defer func(start time.Time) { s.done("DeleteResource", start, err) }(time.Now())
	return s.Store.DeleteResource(ctx, arn, check)
}

func (s *observedStore) ListResources(ctx context.Context, q store.ResourceQuery) (r0 []*store.Resource, err error) {
	defer func(start time.Time) { s.done("ListResources", start, err) }(time.Now())
	return s.Store.ListResources(ctx, q)
}

func (s *observedStore) ScanResources(ctx context.Context, q store.ResourceScan) (r0 []*store.Resource, err error) {
	defer func(start time.Time) { s.done("ScanResources", start, err) }(time.Now())
	return s.Store.ScanResources(ctx, q)
}

func (s *observedStore) CountResources(ctx context.Context, kind string, owner string) (r0 int, err error) {
	defer func(start time.Time) { s.done("CountResources", start, err) }(time.Now())
	return s.Store.CountResources(ctx, kind, owner)
}

func (o *observedStore) StartStageSession(ctx context.Context, s *store.StageSession, outbox ...*store.OutboxEntry) (err error) {
	defer func(start time.Time) { o.done("StartStageSession", start, err) }(time.Now())
	return o.Store.StartStageSession(ctx, s, outbox...)
}

func (s *observedStore) EndStageSession(ctx context.Context, stageARN string, sessionID string, end time.Time, outbox ...*store.OutboxEntry) (err error) {
	defer func(start time.Time) { s.done("EndStageSession", start, err) }(time.Now())
	return s.Store.EndStageSession(ctx, stageARN, sessionID, end, outbox...)
}

func (s *observedStore) GetStageSession(ctx context.Context, stageARN string, sessionID string) (r0 *store.StageSession, err error) {
	defer func(start time.Time) { s.done("GetStageSession", start, err) }(time.Now())
	return s.Store.GetStageSession(ctx, stageARN, sessionID)
}

func (s *observedStore) ListStageSessions(ctx context.Context, stageARN string, p store.Page) (r0 []*store.StageSession, err error) {
	defer func(start time.Time) { s.done("ListStageSessions", start, err) }(time.Now())
	return s.Store.ListStageSessions(ctx, stageARN, p)
}

func (s *observedStore) PutParticipant(ctx context.Context, p *store.Participant) (err error) {
	defer func(start time.Time) { s.done("PutParticipant", start, err) }(time.Now())
	return s.Store.PutParticipant(ctx, p)
}

func (s *observedStore) GetParticipant(ctx context.Context, stageARN string, sessionID string, participantID string) (r0 *store.Participant, err error) {
	defer func(start time.Time) { s.done("GetParticipant", start, err) }(time.Now())
	return s.Store.GetParticipant(ctx, stageARN, sessionID, participantID)
}

func (s *observedStore) ListParticipants(ctx context.Context, q store.ParticipantQuery) (r0 []*store.Participant, err error) {
	defer func(start time.Time) { s.done("ListParticipants", start, err) }(time.Now())
	return s.Store.ListParticipants(ctx, q)
}

func (s *observedStore) AddParticipantEvent(ctx context.Context, e *store.ParticipantEvent, outbox ...*store.OutboxEntry) (err error) {
	defer func(start time.Time) { s.done("AddParticipantEvent", start, err) }(time.Now())
	return s.Store.AddParticipantEvent(ctx, e, outbox...)
}

func (s *observedStore) ListParticipantEvents(ctx context.Context, stageARN string, sessionID string, participantID string, p store.Page) (r0 []*store.ParticipantEvent, err error) {
	defer func(start time.Time) { s.done("ListParticipantEvents", start, err) }(time.Now())
	return s.Store.ListParticipantEvents(ctx, stageARN, sessionID, participantID, p)
}

func (s *observedStore) PutParticipantReplica(ctx context.Context, r *store.ParticipantReplica) (err error) {
	defer func(start time.Time) { s.done("PutParticipantReplica", start, err) }(time.Now())
	return s.Store.PutParticipantReplica(ctx, r)
}

func (s *observedStore) ListParticipantReplicas(ctx context.Context, sourceStageARN string, participantID string, p store.Page) (r0 []*store.ParticipantReplica, err error) {
	defer func(start time.Time) { s.done("ListParticipantReplicas", start, err) }(time.Now())
	return s.Store.ListParticipantReplicas(ctx, sourceStageARN, participantID, p)
}

func (s *observedStore) RevokeParticipant(ctx context.Context, stageARN string, participantID string, at time.Time) (err error) {
	defer func(start time.Time) { s.done("RevokeParticipant", start, err) }(time.Now())
	return s.Store.RevokeParticipant(ctx, stageARN, participantID, at)
}

func (s *observedStore) IsParticipantRevoked(ctx context.Context, stageARN string, participantID string) (r0 bool, err error) {
	defer func(start time.Time) { s.done("IsParticipantRevoked", start, err) }(time.Now())
	return s.Store.IsParticipantRevoked(ctx, stageARN, participantID)
}

func (s *observedStore) EnqueueEvents(ctx context.Context, entries ...*store.OutboxEntry) (err error) {
	defer func(start time.Time) { s.done("EnqueueEvents", start, err) }(time.Now())
	return s.Store.EnqueueEvents(ctx, entries...)
}

func (s *observedStore) PendingEvents(ctx context.Context, sink string, now time.Time, limit int) (ready []*store.OutboxEntry, next time.Time, err error) {
	defer func(start time.Time) { s.done("PendingEvents", start, err) }(time.Now())
	return s.Store.PendingEvents(ctx, sink, now, limit)
}

func (s *observedStore) DeleteEvents(ctx context.Context, sink string, seqs ...int64) (err error) {
	defer func(start time.Time) { s.done("DeleteEvents", start, err) }(time.Now())
	return s.Store.DeleteEvents(ctx, sink, seqs...)
}

func (s *observedStore) DeferEvent(ctx context.Context, sink string, seq int64, next time.Time, lastErr string) (err error) {
	defer func(start time.Time) { s.done("DeferEvent", start, err) }(time.Now())
	return s.Store.DeferEvent(ctx, sink, seq, next, lastErr)
}

func (s *observedStore) CountEvents(ctx context.Context) (r0 map[string]int, err error) {
	defer func(start time.Time) { s.done("CountEvents", start, err) }(time.Now())
	return s.Store.CountEvents(ctx)
}

func (s *observedStore) GetSetting(ctx context.Context, key string) (r0 []byte, err error) {
	defer func(start time.Time) { s.done("GetSetting", start, err) }(time.Now())
	return s.Store.GetSetting(ctx, key)
}

func (s *observedStore) PutSettingIfAbsent(ctx context.Context, key string, value []byte) (r0 []byte, err error) {
	defer func(start time.Time) { s.done("PutSettingIfAbsent", start, err) }(time.Now())
	return s.Store.PutSettingIfAbsent(ctx, key, value)
}
