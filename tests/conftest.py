"""Tests never touch a user's AiiDA profiles: a private AIIDA_PATH unless the test command set one."""

import os
import tempfile

if "AIIDA_PATH" not in os.environ:
    os.environ["AIIDA_PATH"] = tempfile.mkdtemp(prefix="llpam-tests-aiida.")


def load_workflow_script(name: str):
    """A script of workflows/ (run with `verdi run`, not a package module) imported as a module, for its functions."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "workflows" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
