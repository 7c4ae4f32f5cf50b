#!/usr/bin/env bash
# Installs the pinned third-party clients of tests/clients/package.json (EventSource, Prism,
# Redocly, the OpenAPI schema validator) into <tools-dir> with `npm ci` from the lockfile, once
# per lockfile: a stamp holds the lockfile's hash, and a lock serialises parallel tests.
# Usage: install.sh <tools-dir>
set -euo pipefail

tools=${1:?usage: install.sh <tools-dir>}
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "tests/clients: node and npm are required (Debian packages: nodejs npm);" \
         "found node=$(command -v node || echo none) npm=$(command -v npm || echo none)" >&2
    exit 1
fi

mkdir -p "$tools"
exec 9>"$tools/.install.lock"
flock 9

want=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [ -f "$tools/.installed" ] && [ "$(cat "$tools/.installed")" = "$want" ] &&
    [ -d "$tools/node_modules" ]; then
    exit 0
fi
cp "$here/package.json" "$here/package-lock.json" "$tools/"
# --prefer-offline: a cached copy is used when the registry cannot be reached.
if ! (cd "$tools" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error) \
    >"$tools/npm-install.log" 2>&1; then
    echo "tests/clients: npm ci in $tools failed:" >&2
    cat "$tools/npm-install.log" >&2
    exit 1
fi
echo "$want" >"$tools/.installed"
