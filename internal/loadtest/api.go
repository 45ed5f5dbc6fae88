package loadtest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/aws/smithy-go"
)

// Target is the server under test and how to reach its API.
type Target struct {
	// Endpoint is the base URL of the API, e.g. http://127.0.0.1:8080.
	Endpoint        string
	Region          string
	AccessKeyID     string
	SecretAccessKey string
	// ServerPID, if positive, is the server's process on this machine:
	// its CPU time and memory are read from /proc/<pid>.
	ServerPID int
	// ServerDescription says in the report how the server runs.
	ServerDescription string
}

// apiClient is an aws-sdk-go-v2 ivsrealtime client for the target, without
// retries (an error is counted, not hidden) and with enough idle
// connections for conns concurrent calls.
func (t Target) apiClient(conns int) *ivsrealtime.Client {
	httpClient := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = conns * 2
		tr.MaxIdleConnsPerHost = conns * 2
	})
	cfg := aws.Config{
		Region:      t.Region,
		Credentials: credentials.NewStaticCredentialsProvider(t.AccessKeyID, t.SecretAccessKey, ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient:  httpClient,
	}
	return ivsrealtime.NewFromConfig(cfg, func(o *ivsrealtime.Options) {
		o.BaseEndpoint = aws.String(t.Endpoint)
	})
}

// APIOptions configure the control-plane load test.
type APIOptions struct {
	// Operations to measure, one after the other: CreateParticipantToken,
	// GetStage, ListStages, CreateStage (default: the first three).
	Operations []string
	// Concurrency is the number of calls in flight (default 16).
	Concurrency int
	// Duration of each operation's run (default 10 s).
	Duration time.Duration
	// Warmup before each operation's measured run (default 1 s).
	Warmup time.Duration
}

// APIOperations are the operations RunAPI can measure.
var APIOperations = []string{"CreateParticipantToken", "GetStage", "ListStages", "CreateStage"}

// APIReport is the result of RunAPI.
type APIReport struct {
	Mode        string       `json:"mode"` // "api"
	Endpoint    string       `json:"endpoint"`
	Server      string       `json:"server,omitempty"`
	Concurrency int          `json:"concurrency"`
	DurationSec float64      `json:"durationSeconds"` // of each operation's run
	Generator   string       `json:"generator"`
	Operations  []APIOpStats `json:"operations"`
}

// APIOpStats are one operation's figures.
type APIOpStats struct {
	Operation  string      `json:"operation"`
	Requests   uint64      `json:"requests"`
	Errors     uint64      `json:"errors"`
	ErrorKinds []string    `json:"errorKinds,omitempty"` // up to five distinct errors
	PerSecond  float64     `json:"requestsPerSecond"`
	Latency    Percentiles `json:"latency"`
	// ServerCores is the server's CPU use during the run (with ServerPID),
	// and PerServerCore the requests per second per core it used.
	ServerCores   float64 `json:"serverCores,omitempty"`
	PerServerCore float64 `json:"requestsPerSecondPerServerCore,omitempty"`
	// GeneratorCores is this process's CPU use during the run;
	// OtherCores what other processes of the machine used meanwhile.
	GeneratorCores float64 `json:"generatorCores,omitempty"`
	OtherCores     float64 `json:"otherProcessesCores"`
}

// RunAPI measures the API operations of opts against t, each for
// opts.Duration with opts.Concurrency calls in flight. It creates one stage
// to read and make tokens for (and ten more for ListStages to list), and
// deletes every stage it made.
func RunAPI(ctx context.Context, t Target, opts APIOptions, progress func(string)) (*APIReport, error) {
	if len(opts.Operations) == 0 {
		opts.Operations = APIOperations[:3]
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 16
	}
	if opts.Duration <= 0 {
		opts.Duration = 10 * time.Second
	}
	if opts.Warmup < 0 {
		opts.Warmup = 0
	}
	if progress == nil {
		progress = func(string) {}
	}
	for _, op := range opts.Operations {
		if apiCall(op) == nil {
			return nil, fmt.Errorf("loadtest: unknown operation %q (want one of %v)", op, APIOperations)
		}
	}
	c := t.apiClient(opts.Concurrency)
	var made []string
	var madeMu sync.Mutex
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		deleteStages(cctx, c, made)
	}()
	var arn string
	for i := range 11 {
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(fmt.Sprintf("loadtest-api-%d", i))})
		if err != nil {
			return nil, fmt.Errorf("loadtest: CreateStage: %w", err)
		}
		made = append(made, *out.Stage.Arn)
		if i == 0 {
			arn = *out.Stage.Arn
		}
	}
	rep := &APIReport{
		Mode: "api", Endpoint: t.Endpoint, Server: t.ServerDescription, Concurrency: opts.Concurrency,
		DurationSec: opts.Duration.Seconds(), Generator: generatorDescription(),
	}
	for _, op := range opts.Operations {
		call := apiCall(op)
		remember := func(a string) {
			madeMu.Lock()
			made = append(made, a)
			madeMu.Unlock()
		}
		if opts.Warmup > 0 {
			progress(fmt.Sprintf("%s: warming up for %s", op, opts.Warmup))
			runAPIOp(ctx, c, call, arn, remember, opts.Concurrency, opts.Warmup, &histogram{})
		}
		progress(fmt.Sprintf("%s: %d concurrent calls for %s", op, opts.Concurrency, opts.Duration))
		h := &histogram{}
		srv0, srvErr := readProcIf(t.ServerPID)
		gen0, genErr := readProc(0)
		machine := startMachineWatch()
		st := runAPIOp(ctx, c, call, arn, remember, opts.Concurrency, opts.Duration, h)
		srv1, srvErr1 := readProcIf(t.ServerPID)
		gen1, genErr1 := readProc(0)
		st.Operation = op
		st.Latency = h.percentiles()
		if t.ServerPID > 0 && srvErr == nil && srvErr1 == nil {
			st.ServerCores = cores(srv0, srv1)
			if st.ServerCores > 0 {
				st.PerServerCore = st.PerSecond / st.ServerCores
			}
		}
		busy := machine.cores()
		if genErr == nil && genErr1 == nil {
			st.GeneratorCores = cores(gen0, gen1)
		}
		if busy > 0 {
			st.OtherCores = max(0, busy-st.GeneratorCores-st.ServerCores)
		}
		rep.Operations = append(rep.Operations, st)
		if err := ctx.Err(); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

func readProcIf(pid int) (procSample, error) {
	if pid <= 0 {
		return procSample{}, errNoProc
	}
	return readProc(pid)
}

type apiFunc func(ctx context.Context, c *ivsrealtime.Client, arn string) (madeARN string, err error)

func apiCall(op string) apiFunc {
	switch op {
	case "CreateParticipantToken":
		return func(ctx context.Context, c *ivsrealtime.Client, arn string) (string, error) {
			_, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{
				StageArn: &arn, UserId: aws.String("loadtest"),
				Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish, types.ParticipantTokenCapabilitySubscribe},
			})
			return "", err
		}
	case "GetStage":
		return func(ctx context.Context, c *ivsrealtime.Client, arn string) (string, error) {
			_, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: &arn})
			return "", err
		}
	case "ListStages":
		return func(ctx context.Context, c *ivsrealtime.Client, _ string) (string, error) {
			_, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(10)})
			return "", err
		}
	case "CreateStage":
		return func(ctx context.Context, c *ivsrealtime.Client, _ string) (string, error) {
			out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("loadtest-api-create")})
			if err != nil {
				return "", err
			}
			return *out.Stage.Arn, nil
		}
	}
	return nil
}

// runAPIOp calls call from conc goroutines for d and records each call's
// latency in h.
func runAPIOp(ctx context.Context, c *ivsrealtime.Client, call apiFunc, arn string, remember func(string), conc int, d time.Duration, h *histogram) APIOpStats {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		wg          sync.WaitGroup
		n, failures atomic.Uint64
		kindsMu     sync.Mutex
		kinds       []string
	)
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				t0 := time.Now()
				made, err := call(ctx, c, arn)
				if ctx.Err() != nil && err != nil {
					return // cut short by the end of the run: not counted
				}
				h.record(time.Since(t0))
				n.Add(1)
				if made != "" {
					remember(made)
				}
				if err != nil {
					failures.Add(1)
					kindsMu.Lock()
					kinds = addKind(kinds, errorKind(err))
					kindsMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	return APIOpStats{Requests: n.Load(), Errors: failures.Load(), ErrorKinds: kinds, PerSecond: float64(n.Load()) / el.Seconds()}
}

// errorKind names an error briefly: the AWS error code, or the error text.
func errorKind(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	s := err.Error()
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

func addKind(kinds []string, k string) []string {
	for _, x := range kinds {
		if x == k {
			return kinds
		}
	}
	if len(kinds) >= 5 {
		return kinds
	}
	return append(kinds, k)
}

func deleteStages(ctx context.Context, c *ivsrealtime.Client, arns []string) {
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for _, arn := range arns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, _ = c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(arn)})
		})
	}
	wg.Wait()
}
