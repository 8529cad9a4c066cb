"""The benchmark scripts run end to end on tiny sizes: table and JSON."""

import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  out = subprocess.run([sys.executable, *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-4000:]
  return out.stdout


def test_ot_loss_bench_prints_and_saves_its_table(tmp_path):
  out = tmp_path / "ot_loss.json"
  stdout = _run("bench/ot_loss.py", "--ns=16", "--ds=8", "--steps=",
                "--repeats=1", f"--out={out}")
  assert "| 16 | 8 |" in stdout
  result = json.loads(out.read_text())
  assert result["peak_host_bytes"] > 0
  rows = result["rows"]
  assert len(rows) == 1
  row = rows[0]
  assert (row["n"], row["d"]) == (16, 8)
  for key in ("ours_s", "ours_thr_s", "naive_s", "speedup"):
    assert row[key] > 0, key
  assert 1 <= row["ours_thr_iters"] <= 2000
  assert row["ours_mem_mb"] > 0


def test_scaling_bench_prints_and_saves_its_table(tmp_path):
  out = tmp_path / "scaling.json"
  _run("bench/scaling.py", "--devices=1,2", "--ns=16", "--repeats=1",
       "--sinkhorn_share", "--config.ot.num_iterations=5", f"--out={out}")
  rows = json.loads(out.read_text())["rows"]
  assert [(r["devices"], r["n"]) for r in rows] == [(1, 16), (2, 16)]
  for r in rows:
    assert "error" not in r, r["error"]
    assert r["step_s"] > 0
    # Timing noise can outweigh 4 iterations of a tiny problem: only finite.
    assert math.isfinite(r["sinkhorn_share"])
  # Each device holds half the batch-coupled temporaries on two devices.
  assert rows[1]["temp_mib"] < rows[0]["temp_mib"]
