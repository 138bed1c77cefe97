#!/usr/bin/env bash
# Set up (idempotent) and run the default test suite with a private AiiDA configuration.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
# tests never touch the user's profiles
export AIIDA_PATH="${LLPAM_TEST_AIIDA_PATH:-$(mktemp -d /tmp/llpam-tests-aiida.XXXXXX)}"
exec python -m pytest "$@"
