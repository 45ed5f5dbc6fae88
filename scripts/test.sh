#!/usr/bin/env bash
# Runs every test of Rostrum, installing what the tests need on a fresh
# Debian machine with Go (see README.md). CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

export GOFLAGS="${GOFLAGS:--mod=readonly}"

need_apt=()
command -v openssl >/dev/null || need_apt+=(openssl)
command -v python3 >/dev/null || need_apt+=(python3)
command -v ffmpeg >/dev/null || need_apt+=(ffmpeg)     # media fixtures for the WebRTC tests
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
# The aws CLI and boto3 with the ivs-realtime model come with the project's
# machines; on others the client smoke tests skip (and fail under CI=true).

# The browser tests (test/e2e/browser_test.go): Debian's Chromium, the
# harness's npm packages and, at test time only, the official IVS Web
# Broadcast SDK for the interoperability test.
bash test/browser/install.sh

# The object storage tests (internal/objstore) run their contract suite
# against a real S3-compatible service too: Versity's S3 gateway, installed
# from the Go module proxy. Without it they skip, and fail under CI=true.
VERSITYGW_VERSION=v1.8.0
if ! command -v versitygw >/dev/null && [ ! -x "$(go env GOPATH)/bin/versitygw" ] \
    && { [ -z "$(go env GOBIN)" ] || [ ! -x "$(go env GOBIN)/versitygw" ]; }; then
  echo "== installing versitygw $VERSITYGW_VERSION"
  GOFLAGS= go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
fi

# The PostgreSQL store (internal/store/postgres) and TestAPIOnPostgres
# (test/e2e) run against a throw-away cluster of Debian's PostgreSQL, which
# the tests start and stop themselves (internal/store/postgres/pgtest).
# Without it they skip, and fail under CI=true.
if ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
  echo "== installing postgresql"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql
fi

# The composition tests (internal/composition/output, test/e2e) publish to a
# real RTMP server: Debian's nginx with its RTMP module, and its stream
# module for RTMPS (internal/testutil/rtmpserver starts them). Without them
# those tests skip, and fail under CI=true.
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ] \
    || [ ! -e /usr/lib/nginx/modules/ngx_rtmp_module.so ] || [ ! -e /usr/lib/nginx/modules/ngx_stream_module.so ]; then
  echo "== installing nginx with its RTMP and stream modules"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-rtmp libnginx-mod-stream
fi

echo "== go mod download"
go mod download

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 15m ./...
