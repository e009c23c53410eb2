#!/usr/bin/env bash
# Builds this step into dist/{{name}}.wasm and compiles it into medic's cache.
# MEDIC: the medic binary (default: `medic` on PATH).
set -euo pipefail
exec "${MEDIC:-medic}" step build "$(dirname "$0")"
