"""Launch-test fixtures: run a launch program as a user would."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))


def run_module(*args, check=True):
  """`python -m <args>` from the repository root; output captured."""
  proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=600)
  if check and proc.returncode:
    raise AssertionError(f"{args} failed:\n{proc.stderr[-4000:]}")
  return proc


@pytest.fixture
def cli():
  """`cli("launch.train", "--flag=...", check=True)` -> CompletedProcess."""
  return run_module
