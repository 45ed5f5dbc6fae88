#!/usr/bin/env bash
# Installs what the browser tests need on a fresh Debian machine: Debian's
# Chromium, the test harness's npm packages (package-lock.json) and the
# official IVS Web Broadcast SDK for the interoperability test. The SDK is
# installed from npm into .official-sdk/ (gitignored), never committed.
set -euo pipefail
cd "$(dirname "$0")"

# The official SDK's version the interoperability test runs against.
IVS_SDK_VERSION=1.41.0

if ! command -v chromium >/dev/null; then
  echo "== installing chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "== installing nodejs and npm"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm
fi

echo "== npm ci (test/browser)"
npm ci --no-audit --no-fund --loglevel=error

sdk=.official-sdk/node_modules/amazon-ivs-web-broadcast/package.json
if [ ! -f "$sdk" ] || ! grep -q "\"version\": \"$IVS_SDK_VERSION\"" "$sdk"; then
  echo "== npm install amazon-ivs-web-broadcast@$IVS_SDK_VERSION (test time only, into test/browser/.official-sdk/)"
  rm -rf .official-sdk
  mkdir -p .official-sdk
  npm install --prefix .official-sdk --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    "amazon-ivs-web-broadcast@$IVS_SDK_VERSION"
fi
