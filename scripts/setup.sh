#!/usr/bin/env bash
# Sets up a fresh machine that has only Node 20 and npm: the pinned pnpm, the workspace's
# dependencies, and Debian's Chromium, Firefox ESR and WebKitGTK for the browser tests. Safe to
# run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PNPM_VERSION=12.4.2
export TURBO_TELEMETRY_DISABLED=1

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  echo "setup: installing pnpm@$PNPM_VERSION"
  npm install --global --no-fund --no-audit "pnpm@$PNPM_VERSION"
fi

# Debian's browsers for the browser tests, never a downloaded build: chromium (every browser
# test, the demo's end-to-end run, the benchmarks), firefox-esr (driven over WebDriver BiDi by
# puppeteer-core), WebKitGTK's WebKitWebDriver with its MiniBrowser (webkit2gtk-driver), and
# xvfb, the display WebKitGTK needs (it has no headless mode).
APT_PACKAGES=()
if [ "${MAILSPOOL_SKIP_CHROMIUM:-0}" != 1 ] && [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  APT_PACKAGES+=(chromium)
fi
if [ "${MAILSPOOL_SKIP_OTHER_BROWSERS:-0}" != 1 ]; then
  [ -x "${FIREFOX_PATH:-/usr/bin/firefox-esr}" ] || APT_PACKAGES+=(firefox-esr)
  [ -x "${WEBKIT_DRIVER_PATH:-/usr/bin/WebKitWebDriver}" ] || APT_PACKAGES+=(webkit2gtk-driver)
  command -v Xvfb >/dev/null 2>&1 || APT_PACKAGES+=(xvfb)
fi
if [ "${#APT_PACKAGES[@]}" -gt 0 ]; then
  echo "setup: installing Debian's ${APT_PACKAGES[*]} (browser tests)"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
fi

pnpm install --frozen-lockfile
echo "setup: done"
