"""Imports run one way (docs/architecture.md): physics -> calculations/parsers -> workflows -> cli and scripts.

Every import statement of the package (at module level or inside a function) is read with ``ast``; a module may
import only modules of its own layer or below. The pure layer (physics, quantities, report, the ph.x progress
parser) and the array layer (plotting, export) import no AiiDA at all.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "aiida_llpam"

#: module prefix -> layer; the longest matching prefix wins
LAYERS = {
    "aiida_llpam.physics": 0,
    "aiida_llpam.quantities": 0,
    "aiida_llpam.report": 0,
    "aiida_llpam.parsers.ph_progress": 0,
    "aiida_llpam.plotting": 1,
    "aiida_llpam.export": 1,
    "aiida_llpam.structures": 1,
    "aiida_llpam.calculations": 1,
    "aiida_llpam.parsers": 1,
    "aiida_llpam.queries": 1,
    "aiida_llpam.monitor": 1,
    "aiida_llpam.configure": 1,
    "aiida_llpam.daemon_profile": 1,
    "aiida_llpam.workflows": 2,
    "aiida_llpam.cli": 3,
    "aiida_llpam": 0,  # the package's __init__
}
#: modules that must not import AiiDA (arrays in, arrays out)
NO_AIIDA = (
    "aiida_llpam.physics",
    "aiida_llpam.quantities",
    "aiida_llpam.report",
    "aiida_llpam.parsers.ph_progress",
    "aiida_llpam.plotting",
    "aiida_llpam.export",
)


def layer(module: str) -> int:
    matches = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    return LAYERS[max(matches, key=len)]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``source``, relative imports resolved against ``module``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            # `from pkg import sub` may import a submodule: count it as pkg.sub
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
    return found


def violations(source: str, module: str, is_package: bool = False) -> list[str]:
    problems = []
    for line, target in imported_modules(source, module, is_package):
        if target.startswith("aiida_llpam") and layer(target) > layer(module):
            problems.append(f"{module}:{line} imports {target} (layer {layer(target)} > {layer(module)})")
        if module.startswith(NO_AIIDA) and (target == "aiida" or target.startswith("aiida.")):
            problems.append(f"{module}:{line} imports {target}: this layer takes arrays, not AiiDA nodes")
    return problems


def test_imports_run_one_way():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        problems += violations(path.read_text(), module_name(path), path.name == "__init__.py")
    assert not problems, "\n".join(problems)


def test_scripts_only_use_the_package():
    """workflows/*.py (the `verdi run` scripts) sit above everything; tests import the package, never a script."""
    for path in sorted((ROOT / "tests").rglob("*.py")):
        text = path.read_text()
        assert "spec_from_file_location" not in text or path.name == "test_layers.py", f"{path} loads a script by path"


@pytest.mark.parametrize(
    "source, module, expected",
    [
        ("from aiida_llpam.workflows.pam import PamWorkChain", "aiida_llpam.physics.modes", "layer 2 > 0"),
        ("from ..cli import launch", "aiida_llpam.workflows.pam", "aiida_llpam.cli.launch (layer 3 > 2)"),
        ("def f():\n    from aiida import orm", "aiida_llpam.plotting.panels", "takes arrays"),
        ("from aiida_llpam.physics import units", "aiida_llpam.cli.results", None),
    ],
)
def test_the_checker_finds_what_it_should(source, module, expected):
    found = violations(source, module)
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1 and expected in found[0], found
