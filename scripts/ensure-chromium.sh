#!/usr/bin/env bash
# Makes sure the headless browser of the page test (test/browser) is there: Debian's
# chromium, installed through the system package manager the first time, and only when
# missing. Nothing is downloaded from outside the package registries.
#
#   CHROMIUM_PATH   the browser to use (default /usr/bin/chromium)
#
# Exits 0 when the browser is there (or was just installed); otherwise prints one line
# saying why it cannot be installed and what to do, and exits 3. The page test then
# fails with the same advice (it never passes without having looked at the page).
set -uo pipefail
browser="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$browser" ] && exit 0

if [ "$(id -u)" != "0" ]; then
  echo "setup: $browser is missing and this is not root: run \"sudo apt-get install chromium\" (or set CHROMIUM_PATH to a Chromium); the page test needs it" >&2
  exit 3
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: $browser is missing and there is no apt-get: install Chromium with your package manager (or set CHROMIUM_PATH to it); the page test needs it" >&2
  exit 3
fi
echo "setup: installing Debian's chromium for the page test (apt-get, once)..."
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } >/tmp/snapkeeper-chromium-install.log 2>&1; then
  echo "setup: apt-get could not install chromium (see /tmp/snapkeeper-chromium-install.log); the page test needs it" >&2
  exit 3
fi
if [ ! -x "$browser" ]; then
  echo "setup: chromium was installed but $browser is still missing: set CHROMIUM_PATH to the browser" >&2
  exit 3
fi
