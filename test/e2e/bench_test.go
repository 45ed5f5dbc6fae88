package e2e

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
)

// The control plane's hot paths, measured as users drive them: real HTTP on
// loopback, SigV4-signed by aws-sdk-go-v2, through validation, the service
// and the store. See docs/performance.md for figures and how to compare.

func BenchmarkCreateParticipantToken(b *testing.B) {
	ts := startServer(b, "")
	c := ts.client()
	st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	if err != nil {
		b.Fatal(err)
	}
	in := &ivsrealtime.CreateParticipantTokenInput{StageArn: st.Stage.Arn, UserId: new(string)}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.CreateParticipantToken(bg, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGetStage(b *testing.B) {
	ts := startServer(b, "")
	c := ts.client()
	st, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{})
	if err != nil {
		b.Fatal(err)
	}
	in := &ivsrealtime.GetStageInput{Arn: st.Stage.Arn}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.GetStage(bg, in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkCreateStage(b *testing.B) {
	ts := startServer(b, "", func(c *configT) { c.Quotas.Stages = 0 })
	c := ts.client()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.CreateStage(bg, &ivsrealtime.CreateStageInput{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
