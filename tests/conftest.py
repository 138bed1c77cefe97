"""Tests never touch a user's AiiDA profiles: a private AIIDA_PATH unless the test command set one."""

import os
import tempfile

if "AIIDA_PATH" not in os.environ:
    os.environ["AIIDA_PATH"] = tempfile.mkdtemp(prefix="llpam-tests-aiida.")
