#!/usr/bin/env bash
# The machine-level parts of the test suite, from Debian's packages: Chromium for the
# browser tests (never `playwright install`), and PostgreSQL's server binaries for the
# tests of the PostgreSQL store (they start a throwaway cluster of their own). Installs only what is missing; `make test`
# runs it first, so a fresh machine needs nothing beforehand.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  SUDO=(sudo -n)
else
  echo "make test needs Debian packages: ${missing[*]}; run as root, or install them:" >&2
  echo "  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages for the tests: ${missing[*]}"
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
