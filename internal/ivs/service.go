// Package ivs is the IVS Real-Time service: stages, participant tokens,
// sessions and participants, encoder/storage/ingest configurations, public
// keys and tags. It holds the business rules only; the AWS wire protocol is
// internal/awsapi's job and persistence is internal/store's.
package ivs

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	api "github.com/rostrum-dev/rostrum/internal/apimodel"
	"github.com/rostrum-dev/rostrum/internal/events"
	"github.com/rostrum-dev/rostrum/internal/store"
	"github.com/rostrum-dev/rostrum/internal/token"
)

// Resource types, as they appear in ARNs.
const (
	kindStage                 = "stage"
	kindEncoderConfiguration  = "encoder-configuration"
	kindStorageConfiguration  = "storage-configuration"
	kindIngestConfiguration   = "ingest-configuration"
	kindPublicKey             = "public-key"
	kindComposition           = "composition"
	signingKeySetting         = "participant-token-signing-key"
	maxTokenAttributesBytes   = 1024
	defaultTokenDurationMins  = 720
	maxParticipantTokenConfig = 12
)

// Quotas are the per-account limits IVS enforces; zero means unlimited.
// Defaults are IVS's (IVS-BEHAVIOUR.md §7).
type Quotas struct {
	Stages                int
	EncoderConfigurations int
	StorageConfigurations int
	IngestConfigurations  int
	PublicKeys            int
	TagsPerResource       int
	// Compositions and CompositionsPerStage count the compositions running
	// at once (STARTING, ACTIVE or STOPPING).
	Compositions         int
	CompositionsPerStage int
}

// DefaultQuotas are IVS's default service quotas.
var DefaultQuotas = Quotas{
	Stages:                1000,
	EncoderConfigurations: 20,
	StorageConfigurations: 5,
	IngestConfigurations:  100,
	PublicKeys:            3,
	TagsPerResource:       50,
	Compositions:          20,
	CompositionsPerStage:  5,
}

// Endpoints are the URLs of this server's media listeners that GetStage
// returns and participant tokens carry. Empty members are omitted.
type Endpoints struct {
	Events string // the stage events websocket (events_url)
	WHIP   string // the WHIP base URL (whip_url)
	RTMP   string
	RTMPS  string
}

// Config configures a Service.
type Config struct {
	Region    string
	AccountID string // the account of callers that carry none in their context
	Endpoints Endpoints
	Quotas    Quotas
	Store     store.Store
	// Events, if set, is the bus the service publishes EventBridge-shaped
	// events to, written to its outbox with the facts they report.
	Events *events.Bus
	// NodeID names this node (process) as the owner of the sessions it
	// starts (see CloseNodeSessions).
	NodeID string
	Logger *slog.Logger
	// SelfSignedTokenMaxLifetime bounds exp − iat of participant tokens
	// signed with an imported public key; 0 is token.DefaultMaxLifetime.
	SelfSignedTokenMaxLifetime time.Duration
	// Channels maps the channel ARNs a composition may broadcast to onto
	// the rtmp:// or rtmps:// URLs (stream key included) it publishes to
	// (--channel ARN=URL): Rostrum has no IVS channels of its own.
	Channels map[string]string
	Now      func() time.Time
}

// Service implements every operation of the ivs-realtime API.
type Service struct {
	cfg    Config
	store  store.Store
	key    *token.SigningKey
	log    *slog.Logger
	now    func() time.Time
	region string
	media  MediaPlane
	events *events.Bus

	// Compositions (compositions.go, composition_reports.go).
	compMu     sync.Mutex // guards compositor
	compositor Compositor
	compCreate sync.Mutex // StartComposition's limit checks and create
	reports    reportQueue
}

var _ api.Service = (*Service)(nil)

// New loads (or, on first start, creates and persists) the participant token
// signing key and returns the service.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Region == "" || cfg.AccountID == "" || cfg.Store == nil {
		return nil, errors.New("ivs: Region, AccountID and Store are required")
	}
	s := &Service{cfg: cfg, store: cfg.Store, log: cfg.Logger, now: cfg.Now, region: cfg.Region, events: cfg.Events}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	key, err := loadSigningKey(ctx, cfg.Store)
	if err != nil {
		return nil, err
	}
	s.key = key
	return s, nil
}

// SigningKey is the key participant tokens are signed with; the media plane
// verifies tokens against its public half.
func (s *Service) SigningKey() *token.SigningKey { return s.key }

func loadSigningKey(ctx context.Context, st store.Store) (*token.SigningKey, error) {
	pemBytes, err := st.GetSetting(ctx, signingKeySetting)
	if errors.Is(err, store.ErrNotFound) {
		k, err := token.GenerateSigningKey()
		if err != nil {
			return nil, err
		}
		fresh, err := k.MarshalPEM()
		if err != nil {
			return nil, err
		}
		// Two nodes starting at once on one database agree on the key that
		// was stored first.
		if pemBytes, err = st.PutSettingIfAbsent(ctx, signingKeySetting, fresh); err != nil {
			return nil, fmt.Errorf("ivs: store signing key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("ivs: load signing key: %w", err)
	}
	return token.ParseSigningKeyPEM(pemBytes)
}

type accountKey struct{}

// WithAccount returns a context whose caller belongs to account; the
// transport sets it from the verified SigV4 credential.
func WithAccount(ctx context.Context, account string) context.Context {
	return context.WithValue(ctx, accountKey{}, account)
}

func (s *Service) account(ctx context.Context) string {
	if a, ok := ctx.Value(accountKey{}).(string); ok && a != "" {
		return a
	}
	return s.cfg.AccountID
}

// owner is the scope of the caller's resources: region and account.
func (s *Service) owner(ctx context.Context) string {
	return s.region + ":" + s.account(ctx)
}

func (s *Service) arn(ctx context.Context, kind, id string) string {
	return fmt.Sprintf("arn:aws:ivs:%s:%s:%s/%s", s.region, s.account(ctx), kind, id)
}

// parsedARN is an IVS ARN split into its parts.
type parsedARN struct {
	Region, Account, Kind, ID string
}

func parseARN(arn string) (parsedARN, bool) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[2] != "ivs" {
		return parsedARN{}, false
	}
	kind, id, ok := strings.Cut(parts[5], "/")
	if !ok || id == "" {
		return parsedARN{}, false
	}
	return parsedARN{Region: parts[3], Account: parts[4], Kind: kind, ID: id}, true
}

// resolveOpt says how a foreign-account ARN is answered: operations that
// declare AccessDeniedException answer that, as AWS does for another
// account's resource; the tag operations declare no such error.
type resolveOpt int

const (
	foreignAccessDenied resolveOpt = iota
	foreignNotFound
)

// get loads the caller's resource of the given kind, mapping a missing or
// foreign one to the error AWS answers.
func (s *Service) get(ctx context.Context, arn, kind string, opt resolveOpt) (*store.Resource, error) {
	p, ok := parseARN(arn)
	if !ok || (kind != "" && p.Kind != kind) {
		return nil, api.NotFoundf("Resource %s not found.", arn)
	}
	if p.Account != s.account(ctx) {
		if opt == foreignAccessDenied {
			return nil, api.AccessDeniedf("User is not authorized to access resource %s.", arn)
		}
		return nil, api.NotFoundf("Resource %s not found.", arn)
	}
	if p.Region != s.region {
		return nil, api.NotFoundf("Resource %s not found.", arn)
	}
	r, err := s.store.GetResource(ctx, arn)
	if errors.Is(err, store.ErrNotFound) {
		return nil, api.NotFoundf("Resource %s not found.", arn)
	}
	if err != nil {
		return nil, s.internal(ctx, err)
	}
	return r, nil
}

// missingRef says how an operation answers a reference to a resource that
// does not exist: ResourceNotFoundException where the operation declares
// it, else ValidationException (SDKs decode only declared errors).
type missingRef int

const (
	missingIsInvalid missingRef = iota
	missingIsNotFound
)

// getRef loads a resource that a request names as a reference rather than
// as its target: CreateStage's storage configuration, an ingest
// configuration's stage. Another account's ARN is AccessDeniedException, as
// it is for a target (every operation that takes a reference declares it):
// an account uses only its own resources, wherever it names them. A missing
// resource, or another region's, is answered as missing says, naming field.
func (s *Service) getRef(ctx context.Context, field, arn, kind string, missing missingRef) (*store.Resource, error) {
	r, err := s.get(ctx, arn, kind, foreignAccessDenied)
	var ae *api.Error
	if errors.As(err, &ae) && ae.Code == api.ResourceNotFoundException {
		what := strings.ReplaceAll(kind, "-", " ")
		if missing == missingIsNotFound {
			return nil, api.NotFoundf("%s: %s %s does not exist.", field, what, arn)
		}
		return nil, api.Validationf("%s: %s %s does not exist.", field, what, arn)
	}
	return r, err
}

// internal logs an unexpected error and hides its detail from the caller.
func (s *Service) internal(ctx context.Context, err error) error {
	s.log.ErrorContext(ctx, "internal error", "err", err)
	return api.Internalf("Unexpected error during processing of request.")
}

// storeErr maps errors from store calls; api errors pass through.
func (s *Service) storeErr(ctx context.Context, err error, arn string) error {
	var ae *api.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, store.ErrNotFound):
		return api.NotFoundf("Resource %s not found.", arn)
	}
	return s.internal(ctx, err)
}

const idAlphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// newID returns n random characters of [A-Za-z0-9], the form of IVS ids.
func newID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}

// NewSessionID returns a stage session id: "st-" and 13 characters, the
// model's fixed 16.
func NewSessionID() string { return "st-" + newID(13) }

func (s *Service) nowMillis() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Pagination tokens are opaque to clients: base64url of "<list>:<seq>".
// Naming the list keeps a token from one List operation out of another.
func pageToken(list string, seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(list + ":" + strconv.FormatInt(seq, 10)))
}

func parsePageToken(list string, tok *string) (int64, error) {
	if tok == nil || *tok == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*tok)
	if err == nil {
		name, seq, ok := strings.Cut(string(raw), ":")
		if n, perr := strconv.ParseInt(seq, 10, 64); ok && perr == nil && name == list && n > 0 {
			return n, nil
		}
	}
	return 0, api.Validationf("nextToken is not valid for %s: pass the nextToken of the previous response unchanged.", list)
}

func pageSize(max *int32, def int) int {
	if max == nil {
		return def
	}
	return int(*max)
}

// pageOf trims the limit+1 rows a store returns to one page and gives the
// token of the next page, if one follows.
func pageOf[T any](list string, rows []T, limit int, seq func(T) int64) ([]T, *string) {
	if len(rows) <= limit {
		return rows, nil
	}
	rows = rows[:limit]
	return rows, api.Ptr(pageToken(list, seq(rows[limit-1])))
}

func decodeDoc[T any](r *store.Resource) (*T, error) {
	v, err := decodeRow[T](r.Doc)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, r.ARN)
	}
	return v, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // generated API types always marshal
	}
	return b
}

// tagsOrEmpty returns tags, or an empty map: resources always show "tags",
// {} when they have none, as AWS answers.
func tagsOrEmpty(t map[string]string) map[string]string {
	if t == nil {
		return map[string]string{}
	}
	return t
}

// checkTags checks the tags a request gives a new resource: no reserved
// key, and no more than the quota.
func (s *Service) checkTags(tags map[string]string) error {
	if err := checkTagKeys(maps.Keys(tags)); err != nil {
		return err
	}
	return s.checkTagCount(tags)
}

// msgReservedTagKey is AWS's answer to a tag key in the aws: namespace, in
// the wording AWS's restJson1 services behind API Gateway use (IVS does not
// publish its own). AWS reserves the prefix in any letter case for the tags
// it sets itself; they can be neither set nor removed by users.
const msgReservedTagKey = "Invalid tag key. Tag keys cannot start with 'aws:' (case insensitive)"

// checkTagKeys refuses keys in AWS's reserved aws: namespace, in any case.
func checkTagKeys(keys iter.Seq[string]) error {
	for k := range keys {
		if len(k) >= 4 && strings.EqualFold(k[:4], "aws:") {
			return api.Validationf("%s", msgReservedTagKey)
		}
	}
	return nil
}

func (s *Service) checkTagCount(tags map[string]string) error {
	if q := s.cfg.Quotas.TagsPerResource; q > 0 && len(tags) > q {
		return api.Validationf("tags: a resource can have at most %d tags, this request would give it %d.", q, len(tags))
	}
	return nil
}

// create stores a new resource, mapping the kind's quota to
// ServiceQuotaExceededException.
func (s *Service) create(ctx context.Context, r *store.Resource, quota int, what string) error {
	err := s.store.CreateResource(ctx, r, quota)
	if errors.Is(err, store.ErrQuotaExceeded) {
		return api.QuotaExceededf("Limit of %d %s per account in %s reached.", quota, what, s.region)
	}
	if err != nil {
		return s.internal(ctx, err)
	}
	return nil
}

func decodeRow[T any](doc []byte) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(doc, v); err != nil {
		return nil, fmt.Errorf("ivs: decode row: %w", err)
	}
	return v, nil
}
