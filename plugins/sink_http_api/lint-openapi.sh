#!/usr/bin/env bash
# Lints an OpenAPI document with Redocly CLI (one of the pinned clients of tests/clients,
# installed into <tools-dir>) and its `recommended` ruleset. Passes only with 0 errors,
# 0 warnings and nothing ignored: it runs in <tools-dir>, where no redocly.yaml or ignore file
# can weaken the rules.
# Usage: lint-openapi.sh <openapi.yaml> <tools-dir>
set -euo pipefail

spec=${1:?usage: lint-openapi.sh <openapi.yaml> <tools-dir>}
tools=${2:?usage: lint-openapi.sh <openapi.yaml> <tools-dir>}

if [ ! -f "$spec" ]; then
    echo "lint-openapi: expected the OpenAPI document at $spec, found no file" >&2
    exit 1
fi
spec=$(realpath "$spec")
bash "$(dirname "$0")/../../tests/clients/install.sh" "$tools"

cd "$tools"
report=$(node_modules/.bin/redocly lint "$spec" --extends recommended --format=json 2>/dev/null ||
    true)
totals=$(node -e '
    let text = "";
    process.stdin.on("data", (d) => (text += d));
    process.stdin.on("end", () => {
        try {
            const t = JSON.parse(text).totals;
            console.log(`${t.errors} errors, ${t.warnings} warnings, ${t.ignored} ignored`);
        } catch (e) {
            console.log("no report");
        }
    });' <<<"$report")
if [ "$totals" != "0 errors, 0 warnings, 0 ignored" ]; then
    echo "$spec: redocly lint (recommended): expected 0 errors, 0 warnings, 0 ignored;" \
         "found $totals:" >&2
    node_modules/.bin/redocly lint "$spec" --extends recommended --format=stylish >&2 || true
    exit 1
fi
echo "$spec: redocly lint (recommended): $totals"
