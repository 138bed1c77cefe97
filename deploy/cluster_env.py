"""The Python of the response and phono3py jobs on the stand-in cluster, installed as a user installs it on a cluster.

On a real cluster the jobs of ``llpam.response`` and ``llpam.rta`` run ``python -m aiida_llpam.calculations...`` in
the user's own environment there: a virtualenv in the home directory with aiida-llpam installed by pip. This step
does exactly that in the account CLUSTER_USER, as that account: ``python3 -m venv ~/llpam-venv`` and ``pip install``
of this checkout's wheel (on a cluster: the same wheel copied over, or the package from an index). The account's
pip resolves the dependencies from the package index itself, so the remote side has its own numpy and phonopy, as a
cluster would. The venv is reinstalled when the package's source changes (a digest of it is kept in the venv).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import sys
import tempfile
from pathlib import Path

from aiida_llpam.configure import CHANGED, CREATED, EXISTS, Step
from aiida_llpam.daemon_profile import CLUSTER_USER, cluster_python

from .host import ServiceError, as_user, ensure_packages, run

REPO = Path(__file__).resolve().parents[1]
#: the digest of the installed source, written last: a venv without it (an interrupted install) is installed again
STAMP_NAME = "aiida-llpam-source.sha256"
#: pip's first install downloads aiida-core and the scientific stack into the account's venv
PIP_TIMEOUT_S = 1200
#: building this checkout's wheel (pip fetches flit_core into an isolated build environment)
WHEEL_TIMEOUT_S = 600
#: what the response and RTA jobs import first, run from the account's home so the checkout cannot shadow the venv
IMPORT_CHECK = "import aiida_llpam.calculations.response_job, aiida_llpam.calculations.rta_job"


def source_digest(repo: Path = REPO) -> str:
    """SHA-256 over the files that make the package: pyproject.toml and everything under aiida_llpam/ but caches."""
    digest = hashlib.sha256()
    files = [repo / "pyproject.toml", *sorted((repo / "aiida_llpam").rglob("*"))]
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(repo)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def ensure_cluster_venv(user: str = CLUSTER_USER) -> list[Step]:
    """The account's ``~/llpam-venv`` with this checkout's aiida-llpam: created, reinstalled after a source change
    (or an interrupted install), or found as it is."""
    python = Path(cluster_python(user))
    venv, stamp = python.parents[1], python.parents[1] / STAMP_NAME
    what = f"{venv} (aiida-llpam for the response and phono3py jobs, as {user})"
    digest = source_digest()
    if python.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return [Step(f"{what}: exists", EXISTS)]
    steps = [ensure_packages(["python3-venv"])]
    account = pwd.getpwnam(user)
    new = not stamp.is_file()

    def as_account(*cmd: str, timeout: float = 120, check: bool = True):
        # a login-like environment of the account's own: nothing of root's PATH, PYTHONPATH or PIP_* settings
        env = ["env", "-i", f"HOME={account.pw_dir}", f"USER={user}", "PATH=/usr/bin:/bin", "PIP_NO_INPUT=1"]
        command = as_user(user, [*env, "PIP_DISABLE_PIP_VERSION_CHECK=1", *cmd])
        return run(command, timeout=timeout, cwd=account.pw_dir, check=check)

    as_account("/usr/bin/python3", "-m", "venv", str(venv))  # idempotent: completes an interrupted one
    wheels = Path(account.pw_dir) / "llpam-wheels"
    with tempfile.TemporaryDirectory(prefix="llpam-wheel-") as tmp:
        build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", tmp, str(REPO)]
        run(build, timeout=WHEEL_TIMEOUT_S)
        (wheel,) = Path(tmp).glob("aiida_llpam-*.whl")
        wheels.mkdir(exist_ok=True)
        target = wheels / wheel.name
        shutil.copyfile(wheel, target)
        for path in (wheels, target):
            os.chown(path, account.pw_uid, account.pw_gid)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    # the first resolves the dependencies; the second replaces the package when only its code changed (same version)
    as_account(*pip, str(target), timeout=PIP_TIMEOUT_S)
    as_account(*pip, "--force-reinstall", "--no-deps", str(target), timeout=PIP_TIMEOUT_S)
    check = as_account(str(python), "-c", IMPORT_CHECK, check=False)
    if check.returncode != 0:
        raise ServiceError(f"aiida-llpam installed in {venv} does not import: {check.stderr.strip()[-500:]}")
    as_account("/bin/sh", "-c", f"echo {digest} > {stamp}")
    steps.append(Step(f"{what}: {'created' if new else 'reinstalled (source changed)'}", CREATED if new else CHANGED))
    return steps
