package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needTool finds a client program; CI must have it (a skipped client test
// there would hide a regression), elsewhere its absence skips the test.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is needed for this test and CI must have it: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

// startBinary builds cmd/rostrum and runs `rostrum serve` as a user would,
// with extra flags, returning its base URL. The process is killed when the test ends.
func startBinary(t *testing.T, extra ...string) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "rostrum")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/rostrum")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	args := []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--rtc-udp-port", "0", "--rtc-tcp-port", "0", "--rtc-listen-ip", "127.0.0.1"}
	cmd := exec.Command(bin, append(args, extra...)...)
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = nil
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	// The start log line carries the URL the server is reachable at.
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if i := strings.Index(line, " url="); i >= 0 && strings.Contains(line, "rostrum serving") {
				urls <- strings.Fields(line[i+5:])[0]
			}
		}
	}()
	select {
	case u := <-urls:
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("rostrum serve did not report its URL")
	}
	return ""
}

// devEnv is the environment with only the development credentials for AWS:
// no profile or credential file of the machine's user can interfere.
func devEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env,
		"AWS_ACCESS_KEY_ID=AKIAROSTRUMDEV000001",
		"AWS_SECRET_ACCESS_KEY=rostrum-dev-secret-access-key-do-not-use-in-production",
		"AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	)
}

// TestAWSCLISmoke drives the binary with the aws CLI, as the README shows.
func TestAWSCLISmoke(t *testing.T) {
	aws := needTool(t, "aws")
	url := startBinary(t)
	run := func(args ...string) (map[string]any, string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, aws, append([]string{"ivs-realtime", "--endpoint-url", url, "--output", "json"}, args...)...)
		cmd.Env = devEnv()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		var m map[string]any
		if err == nil && len(strings.TrimSpace(string(out))) > 0 {
			if jerr := json.Unmarshal(out, &m); jerr != nil {
				return nil, stderr.String(), fmt.Errorf("output %q: %v", out, jerr)
			}
		}
		return m, stderr.String(), err
	}
	created, stderr, err := run("create-stage", "--name", "cli-demo", "--participant-token-configurations", "userId=alice,capabilities=PUBLISH,SUBSCRIBE", "--tags", "env=test")
	if err != nil {
		t.Fatalf("create-stage: %v\n%s", err, stderr)
	}
	stage := created["stage"].(map[string]any)
	arn := stage["arn"].(string)
	if stage["name"] != "cli-demo" || len(created["participantTokens"].([]any)) != 1 {
		t.Errorf("create-stage output: %v", created)
	}
	got, stderr, err := run("get-stage", "--arn", arn)
	if err != nil || got["stage"].(map[string]any)["endpoints"].(map[string]any)["whip"] != url+"/whip" {
		t.Fatalf("get-stage: %v %v\n%s", got, err, stderr)
	}
	tok, stderr, err := run("create-participant-token", "--stage-arn", arn, "--user-id", "bob", "--duration", "30")
	if err != nil || tok["participantToken"].(map[string]any)["duration"].(float64) != 30 {
		t.Fatalf("create-participant-token: %v %v\n%s", tok, err, stderr)
	}
	if _, stderr, err := run("tag-resource", "--resource-arn", arn, "--tags", "team=a"); err != nil {
		t.Fatalf("tag-resource: %v\n%s", err, stderr)
	}
	tags, _, err := run("list-tags-for-resource", "--resource-arn", arn)
	if err != nil || tags["tags"].(map[string]any)["team"] != "a" || tags["tags"].(map[string]any)["env"] != "test" {
		t.Errorf("list-tags-for-resource: %v %v", tags, err)
	}
	list, _, err := run("list-stages")
	if err != nil || len(list["stages"].([]any)) != 1 {
		t.Errorf("list-stages: %v %v", list, err)
	}
	// Errors reach the user with their type and message.
	_, stderr, err = run("get-stage", "--arn", "arn:aws:ivs:us-east-1:123456789012:stage/doesNotExist")
	if err == nil || !strings.Contains(stderr, "ResourceNotFoundException") || !strings.Contains(stderr, "doesNotExist") {
		t.Errorf("get-stage of a missing stage: err=%v stderr=%s", err, stderr)
	}
	_, stderr, err = run("create-stage", "--name", "no spaces allowed")
	if err == nil || !strings.Contains(stderr, "ValidationException") || !strings.Contains(stderr, "'name'") {
		t.Errorf("invalid name: err=%v stderr=%s", err, stderr)
	}
	if _, stderr, err := run("delete-stage", "--arn", arn); err != nil {
		t.Fatalf("delete-stage: %v\n%s", err, stderr)
	}
}

// TestBoto3Smoke drives the binary with boto3, as a Python app would.
func TestBoto3Smoke(t *testing.T) {
	python := needTool(t, "python3")
	if err := exec.Command(python, "-c", "import boto3").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("boto3 is needed for this test: %v", err)
		}
		t.Skip("boto3 not installed")
	}
	url := startBinary(t)
	script := `
import sys, boto3, botocore
c = boto3.client("ivs-realtime", endpoint_url=sys.argv[1])
st = c.create_stage(name="boto-demo", tags={"k": "v"})["stage"]
tok = c.create_participant_token(stageArn=st["arn"], userId="py", attributes={"a": "b"})["participantToken"]
assert tok["userId"] == "py" and tok["duration"] == 720, tok
assert hasattr(tok["expirationTime"], "year"), "expirationTime is not parsed as a timestamp"
enc = c.create_encoder_configuration(name="enc", video={"width": 1920, "height": 1080, "framerate": 30.0, "bitrate": 4000000})["encoderConfiguration"]
assert enc["video"]["width"] == 1920, enc
for _ in range(3):
    c.create_ingest_configuration(ingestProtocol="RTMPS", stageArn=st["arn"])
pages = list(c.get_paginator("list_ingest_configurations").paginate(PaginationConfig={"PageSize": 2}))
assert [len(p["ingestConfigurations"]) for p in pages] == [2, 1], pages
try:
    c.get_stage(arn=st["arn"] + "x")
    raise SystemExit("expected ResourceNotFoundException")
except c.exceptions.ResourceNotFoundException as e:
    assert "not found" in e.response["Error"]["Message"] or e.response.get("exceptionMessage"), e.response
try:
    c.create_participant_token(stageArn=st["arn"], attributes={"x": "y" * 2000})
    raise SystemExit("expected ValidationException")
except c.exceptions.ValidationException:
    pass
c.delete_stage(arn=st["arn"])
print("boto3 ok")
`
	cmd := exec.Command(python, "-c", script, url)
	cmd.Env = devEnv()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "boto3 ok") {
		t.Fatalf("boto3 script: %v\n%s", err, out)
	}
}
