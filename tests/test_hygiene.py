"""The tests themselves: no tolerance check that passes whatever the values are.

``numpy.allclose``/``numpy.isclose`` add an absolute tolerance of 1e-8 when none is given, which accepts any
pair of SI values of 1e-17 (gamma^NL, chi); ``math.isclose`` has ``abs_tol``. Every such call in tests/ must
name its absolute tolerance, tied to the scale of the values; ``numpy.testing.assert_allclose`` (atol 0 by
default, and a message that shows the values) is the one to use.
"""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
#: call name -> the keyword that sets its absolute tolerance
CLOSENESS = {"allclose": "atol", "isclose": "atol"}
MATH_ABSOLUTE = "abs_tol"


def _name(func: ast.expr) -> tuple[str, str]:
    """(module-ish prefix, name) of a called expression: np.allclose -> ("np", "allclose")."""
    if isinstance(func, ast.Attribute):
        prefix = func.value.id if isinstance(func.value, ast.Name) else ""
        return prefix, func.attr
    if isinstance(func, ast.Name):
        return "", func.id
    return "", ""


def default_atol_calls(source: str, filename: str = "<snippet>") -> list[str]:
    """``file:line: call`` for every allclose/isclose call in ``source`` that leaves the absolute tolerance to
    its default (numpy.testing.assert_allclose is not one of them)."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        prefix, name = _name(node.func)
        if name not in CLOSENESS:
            continue
        keyword = MATH_ABSOLUTE if prefix == "math" else CLOSENESS[name]
        if keyword not in {k.arg for k in node.keywords}:
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node.func)}(...) without {keyword}=")
    return found


def test_scanner_flags_a_bare_allclose_and_passes_explicit_ones():
    snippet = """
import math
import numpy as np
from numpy import isclose

assert np.allclose(a, b)
assert np.allclose(a, b, rtol=1e-10)
assert isclose(a, b)
assert math.isclose(a, b, rel_tol=1e-6)
assert np.allclose(a, b, rtol=1e-10, atol=1e-12 * scale)
assert math.isclose(a, b, abs_tol=0.0)
np.testing.assert_allclose(a, b, rtol=1e-7)
"""
    assert default_atol_calls(snippet) == [
        "<snippet>:6: np.allclose(...) without atol=",
        "<snippet>:7: np.allclose(...) without atol=",
        "<snippet>:8: isclose(...) without atol=",
        "<snippet>:9: math.isclose(...) without abs_tol=",
    ]


def test_no_closeness_check_in_the_tests_leaves_atol_to_its_default():
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        found += default_atol_calls(path.read_text(), str(path.relative_to(TESTS.parent)))
    assert not found, "give an atol tied to the scale of the values (STYLE.md section 9):\n" + "\n".join(found)
