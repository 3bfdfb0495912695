#!/usr/bin/env bash
# The web app in a real headless Chromium (Debian's `chromium`, driven by playwright-core
# from npm) against a live gateway and mock-upstream on loopback, SQLite database.
#
#   scripts/web-tests.sh
#   WEB_TESTS_PATTERN='chat' scripts/web-tests.sh    # only the tests whose name matches
#   WEB_TESTS_NO_BUILD=1 scripts/web-tests.sh         # reuse the debug binaries as built
#
# Screenshots of every page, in English and Chinese, at desktop (1280 px) and phone
# (390 px) widths are written to artifacts/screenshots/ (CI keeps that folder). Installs
# clients/browser/node_modules on first use. Without /usr/bin/chromium it fails under CI=true and skips otherwise.
# test_accounts.mjs runs an SMTP sink of its own and points the gateway at it from the
# admin panel.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STARTUP_TIMEOUT_S=30
INSTALL_TIMEOUT_S=600
SUITE_TIMEOUT_S=600
LOG_TAG=web-tests
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

TMP="$(mktemp -d -t tokenhub-web-tests.XXXXXX)"
MOCK_PID=""
GATEWAY_PID=""
KEEP_TMP=0
# shellcheck source=lib/services.sh
source "$ROOT/scripts/lib/services.sh"

if [[ ! -x "$CHROMIUM" ]]; then
  if [[ "${CI:-}" == true || "${CI:-}" == 1 ]]; then
    die "$CHROMIUM not found (install Debian's chromium package)"
  fi
  echo "web tests skipped: $CHROMIUM not found (apt-get install chromium)"
  exit 0
fi

if [[ "${WEB_TESTS_NO_BUILD:-}" == 1 ]]; then
  BIN_DIR="$ROOT/target/debug"
else
  build_binaries
fi

dir="$ROOT/clients/browser"
npm_install "$dir" playwright-core || die "npm ci failed in clients/browser"

# Slow enough that the page's intermediate states can be observed as the reply streams.
start_mock --chunk-delay-ms 150 --chunks 8

cat >"$TMP/tokenhub.toml" <<TOML
[[channels]]
name = "mock"
type = "openai"
base_url = "$MOCK_BASE_URL"
api_key = "mock-key"
models = ["mock-gpt", "mock-free"]

[[models]]
id = "mock-gpt"
provider = "Mock"
context = 8192
input_usd_per_mtok = "1.00"
output_usd_per_mtok = "2.00"

[[models]]
id = "mock-free"
provider = "Mock"
context = 4096
input_usd_per_mtok = "0"
output_usd_per_mtok = "0"
TOML

export TOKENHUB_CONFIG="$TMP/tokenhub.toml"
export TOKENHUB_DATABASE_URL="sqlite://$TMP/tokenhub.db"
export TOKENHUB_RELOAD_INTERVAL_MS=100
export TOKENHUB_ROOT_PASSWORD="root-password"
export TOKENHUB_SIGNUP=open
export TOKENHUB_ANONYMOUS_CHAT_RPM=30
export NO_COLOR=1
# Links in account mail (test_accounts.mjs) start with public_url.
GATEWAY_PUBLIC_URL_IS_LISTEN=1
start_gateway

export TOKENHUB_WEB_URL="$GATEWAY_URL"
export TOKENHUB_MOCK_URL="$MOCK_BASE_URL"
export TOKENHUB_ROOT_PASSWORD
export CHROMIUM
export SCREENSHOT_DIR="$ROOT/artifacts/screenshots"
mkdir -p "$SCREENSHOT_DIR"
rc=0
(cd "$dir" && timeout "$SUITE_TIMEOUT_S" node --test --test-concurrency=1 --test-timeout=120000 --test-reporter=spec \
  ${WEB_TESTS_PATTERN:+--test-name-pattern="$WEB_TESTS_PATTERN"} test_web.mjs test_fixes.mjs test_i18n.mjs test_accounts.mjs) || rc=$?
((rc == 124)) && log "the browser suite timed out after ${SUITE_TIMEOUT_S}s"
((rc == 0)) || die "browser tests failed (exit $rc)"
log "screenshots in $SCREENSHOT_DIR: $(ls "$SCREENSHOT_DIR" | wc -l) files"
echo "web tests: all passed"
