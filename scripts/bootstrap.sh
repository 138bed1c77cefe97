#!/usr/bin/env bash
# Idempotent set-up on Debian: QE + OpenBLAS + MPI + graphviz from apt, a virtualenv with aiida-llpam.
# Sourced by run_main.sh and run_tests.sh; does nothing that is already done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LLPAM_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for exe in pw.x ph.x q2r.x matdyn.x mpirun dot; do command -v "$exe" >/dev/null 2>&1 || missing+=("$exe"); done
dpkg -s libopenblas0 >/dev/null 2>&1 || missing+=("libopenblas0")
if [ "${#missing[@]}" -gt 0 ]; then
    echo "[bootstrap] installing Debian packages (missing: ${missing[*]})"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq quantum-espresso libopenblas0 openmpi-bin graphviz >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "[bootstrap] creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.llpam-installed"
want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "[bootstrap] installing aiida-llpam into $VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q -e "$ROOT[tests]"
    echo "$want" > "$stamp"
fi
# ph.x and pw.x run as MPI processes: one BLAS thread each on a 2-core machine
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export PATH="$VENV/bin:$PATH"
