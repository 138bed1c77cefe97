#!/usr/bin/env bash
# Idempotent set-up on Debian: QE + OpenBLAS + MPI + graphviz from apt, a virtualenv with aiida-llpam.
# Sourced by run_main.sh and run_tests.sh, or by hand (`source scripts/bootstrap.sh`); does nothing that is already
# done. The work runs in a subshell in strict mode (set -euo pipefail), so that sourcing it leaves the caller's shell
# options as they were (run_main.sh and run_tests.sh set their own strict mode) and a failure returns its status
# instead of closing an interactive shell. The caller gets PATH (the virtualenv first) and one BLAS thread per process.
_llpam_venv="${LLPAM_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.venv}"
# not `( ... ) || ...`: bash ignores set -e inside a subshell whose status a || or && tests
(
    set -euo pipefail
    trap 'echo "[bootstrap] failed (exit status $?, line $LINENO of ${BASH_SOURCE[0]})" >&2' ERR
    ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    VENV="$_llpam_venv"
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
)
_llpam_status=$?  # a strict caller (set -e) has already stopped at a failure, with its status
if [ "$_llpam_status" -ne 0 ]; then
    unset _llpam_venv
    # `return` when sourced; `exit` when run as a script
    return "$_llpam_status" 2>/dev/null || exit "$_llpam_status"
fi
unset _llpam_status
# ph.x and pw.x run as MPI processes: one BLAS thread each on a 2-core machine
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export PATH="$_llpam_venv/bin:$PATH"
unset _llpam_venv
