"""The tree stays as ``ruff format`` leaves it, with no line over the limit of pyproject.toml ([tool.ruff]).

The formatter does not split long strings, comments or docstrings: ``ruff check --select E501`` finds those.
Both run with this interpreter's ruff (the ``tests`` extra); without ruff the tests skip.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATHS = ["aiida_llpam", "tests", "workflows", "benchmarks", "deploy", "docs", "fixtures"]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None,
    reason="ruff is not importable in this interpreter (install the `tests` extra: pip install -e '.[tests]')",
)


def ruff(*args: str) -> subprocess.CompletedProcess:
    """``python -m ruff <args> <PATHS>`` from the repository root, without writing a cache."""
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "--no-cache", *PATHS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_no_line_over_the_limit():
    result = ruff("check", "--select", "E501", "--output-format", "concise")
    assert result.returncode == 0, f"lines over the limit (split them, do not raise it):\n{result.stdout}"
    assert not result.stderr, result.stderr


def test_tree_is_ruff_formatted():
    result = ruff("format", "--check")
    if result.returncode != 0:
        diff = ruff("format", "--diff")
        pytest.fail(f"run `ruff format {' '.join(PATHS)}`:\n{result.stdout}{result.stderr}\n{diff.stdout}{diff.stderr}")
