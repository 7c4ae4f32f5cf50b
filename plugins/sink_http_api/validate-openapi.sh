#!/usr/bin/env bash
# Validates an OpenAPI 3.x document with @seriousme/openapi-schema-validator (OpenAPI 3.1
# support), installed on first use into a tools directory of the build tree.
# Usage: validate-openapi.sh <openapi.yaml> <tools-dir>
set -euo pipefail

spec=${1:?usage: validate-openapi.sh <openapi.yaml> <tools-dir>}
tools=${2:?usage: validate-openapi.sh <openapi.yaml> <tools-dir>}
package=@seriousme/openapi-schema-validator
version=2.11.0 # pinned: a new validator release must not change what passes

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "validate-openapi: node and npm are required (Debian packages: nodejs npm);" \
         "found node=$(command -v node || echo none) npm=$(command -v npm || echo none)" >&2
    exit 1
fi
if [ ! -f "$spec" ]; then
    echo "validate-openapi: expected the OpenAPI document at $spec, found no file" >&2
    exit 1
fi

spec=$(realpath "$spec") # the validator runs from the tools directory

installed="$tools/node_modules/$package/package.json"
if [ ! -f "$installed" ] || ! grep -q "\"version\": \"$version\"" "$installed"; then
    mkdir -p "$tools"
    # Offline-tolerant: a cached copy is used when the registry cannot be reached.
    if ! npm install --prefix "$tools" --no-audit --no-fund --prefer-offline --loglevel=error \
        "$package@$version" >"$tools/npm-install.log" 2>&1; then
        echo "validate-openapi: npm install $package@$version failed:" >&2
        cat "$tools/npm-install.log" >&2
        exit 1
    fi
fi

cd "$tools"
node --input-type=module - "$spec" <<'JS'
import { Validator } from "@seriousme/openapi-schema-validator";
const spec = process.argv[2];
const validator = new Validator();
const res = await validator.validate(spec);
if (!res.valid) {
    console.error(`${spec}: not a valid OpenAPI document (${validator.version || "version not recognised"}):`);
    console.error(JSON.stringify(res.errors, null, 2));
    process.exit(1);
}
console.log(`${spec}: valid OpenAPI ${validator.version}`);
JS
