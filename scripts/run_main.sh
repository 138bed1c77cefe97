#!/usr/bin/env bash
# Set up (idempotent: QE, virtualenv, AiiDA profile, computer, codes, pseudo family) and run
# the main job: DFPT on alpha-quartz to stored PAM results and figures. Extra arguments go to
# workflows/run_quartz.py (e.g. --protocol production, --enantiomer left, --quiet).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
aiida-llpam setup
mkdir -p "$ROOT/results"
exec verdi -p llpam run workflows/run_quartz.py --protocol fast --pk-file "$ROOT/results/last_pk" --figures "$ROOT/results/figures" "$@"
