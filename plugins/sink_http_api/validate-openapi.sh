#!/usr/bin/env bash
# Validates an OpenAPI 3.x document with @seriousme/openapi-schema-validator (OpenAPI 3.1
# support), one of the pinned clients of tests/clients, installed into <tools-dir>.
# Usage: validate-openapi.sh <openapi.yaml> <tools-dir>
set -euo pipefail

spec=${1:?usage: validate-openapi.sh <openapi.yaml> <tools-dir>}
tools=${2:?usage: validate-openapi.sh <openapi.yaml> <tools-dir>}

if [ ! -f "$spec" ]; then
    echo "validate-openapi: expected the OpenAPI document at $spec, found no file" >&2
    exit 1
fi
spec=$(realpath "$spec") # the validator runs from the tools directory
bash "$(dirname "$0")/../../tests/clients/install.sh" "$tools"

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
