"""The benchmark scripts run end to end on tiny sizes: table and JSON.

Those whose tiny run still takes 20-50 s (each starts one or more programs
that compile a whole network or step) are `slow` (`python -m pytest -m
slow`); the Sinkhorn loss, Sinkhorn passes and accelerator script parts run
in the default suite.
"""

import json
import math
import os
import subprocess
import sys
import tarfile
import time

import numpy as np
import pytest

import child_processes  # tests/child_processes.py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
  env = child_processes.child_env(JAX_PLATFORMS="cpu")
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_limits_and_sinkhorn_peers_benches_run_on_tiny_sizes(tmp_path):
  limits = tmp_path / "limits.json"
  _run("bench/limits.py", "--tiny", f"--out={limits}")
  saved = json.loads(limits.read_text())["limits"]
  for key in ("exp_per_s_xla", "matmul_flops_xla"):
    assert saved[key] > 0, key
  out, md = tmp_path / "peers.json", tmp_path / "peers.md"
  _run("bench/sinkhorn_peers.py", "--tiny", f"--limits={limits}",
       "--impls=ours,ours_ott,ott,pot_np", f"--out={out}", f"--md={md}")
  rows = json.loads(out.read_text())["rows"]
  done = [r for r in rows if "skipped" not in r]
  assert {r["impl"] for r in done} == {"ours", "ours_ott", "ott", "pot_np"}
  for r in done:
    assert r["t_k"] > 0 and r["per_it_s"] >= 0 and r["floor_s"] > 0, r
    assert r["read_floor_s"] > 0, r
  # The same problem, the same fixed 5 iterations: the same value. (Before
  # losses.inner_iterations, ott ran whole blocks of 10: none at all here,
  # an all-zero plan and a loss of exactly 0 for ours and ott.)
  values = {r["impl"]: r["value"] for r in done if r["mode"] == "value"}
  assert abs(values["ours"]) > 1e-3, values
  for impl in ("ours_ott", "ott", "pot_np"):
    assert math.isclose(values[impl], values["ours"], rel_tol=1e-3,
                        abs_tol=1e-5), values
  assert "ours" in md.read_text()


def test_accelerator_bench_parts_on_tiny_sizes():
  # bench/accelerator.py's Sinkhorn and loss parts and its table on CPU
  # (the CIFAR-10 step parts are exercised by its --tiny run, minutes here).
  sys.path.insert(0, ROOT)
  # launch.tables defines `--out` in absl's one registry; importing the bench
  # after it must not define it again (CI failed on that order once).
  from launch import tables  # pylint: disable=g-import-not-at-top,unused-import
  from bench import accelerator  # pylint: disable=g-import-not-at-top
  rows = accelerator.sinkhorn((16,), 10, 20, read_bw=1e10)
  # Timing noise can outweigh 10 iterations at n=16: only finite.
  assert math.isfinite(rows[0]["per_it_s"]) and rows[0]["floor_s"] > 0
  grad = accelerator.loss_grad(16, 8, 10)
  assert grad["seconds"] > 0 and grad["precision"] == "highest"
  tf32 = accelerator.loss_grad(16, 8, 10, "tensorfloat32")
  text = accelerator.table({
      "machine": {"device_kind": "cpu", "backend": "cpu", "jax": "x"},
      "date": "today", "sinkhorn": rows, "loss_grad": grad,
      "loss_grad_tf32": tf32,
      "step": {"n=16 chunk=0 float32": {
          "seconds": 1.0, "compile_s": 2.0, "compiled_bytes": 2**30,
          "flop_per_s": 3e12, "peak_bytes": 2**31}},
      "largest_batch": {"chunk=0": {"points": [(16, 2**20)], "largest": 32,
                                    "predicted": 32, "limit_bytes": 2**30}},
      "errors": {"memory_chunk8": "ValueError: no"}})
  assert "Sinkhorn per iteration, n=16" in text
  # The step lowered for a GPU, here on a CPU (the tiny config): what it is
  # made of, in the table.
  low = accelerator.lowered_ops(
      accelerator._config(16, 8, "float32", 5, True), "cuda")  # pylint: disable=protected-access
  assert low["convolution"] > 0 and low["custom_call"] == 0, low
  assert sum(low["convolutions_by_dilation"].values()) == low["convolution"]
  assert low["convolutions_by_dilation"].get("lhs_dilate 2, rhs_dilate 1")
  assert low["dots_by_precision"]["HIGHEST"] > 0
  # Two Sinkhorn solves in the program (the critic's; the generator's, in
  # the scan over its updates), each with two conditionals run once per
  # absorption; every other `case` is a platform choice XLA folds (two
  # cases each, once per copy JAX emits of the function holding it: more
  # copies under jax 0.11 than 0.10).
  assert low["conditionals_at_run_time"] == 4, low
  assert low["case"] >= 4 + 2 * low["platform_choices"], low
  lowered = accelerator.table({
      "machine": {"device_kind": "cpu", "backend": "cpu", "jax": "x"},
      "date": "today", "lowered": low})
  assert "| CIFAR-10 step lowered for cuda, n=16 |" in lowered
  assert "(4 at run time, " in lowered
  assert "10 iterations; cost products highest |" in text
  assert "10 iterations; cost products tensorfloat32 |" in text
  assert "| CIFAR-10 step, n=16 chunk=0 float32 | 1.000 s | peak 2.0 GiB" in text
  assert "3.0 TFLOP/s" in text
  assert "| largest batch, chunk=0 | 32 |" in text
  assert "| memory_chunk8 failed |" in text


def test_a_profiled_program_names_its_top_operations(tmp_path):
  # bench/trace_summary.py reads what jax.profiler wrote (the accelerator
  # run profiles one CIFAR-10 step so), and the accelerator table shows it.
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, ROOT)
  from bench import accelerator  # pylint: disable=g-import-not-at-top
  from bench import trace_summary  # pylint: disable=g-import-not-at-top
  with pytest.raises(FileNotFoundError, match="create_perfetto_trace"):
    trace_summary.summarize(str(tmp_path))
  # A run of several processes: one trace folder each, named in the error.
  for i in range(2):
    run = tmp_path / "tb" / f"process_{i}" / "plugins" / "profile" / "run"
    run.mkdir(parents=True)
    (run / "perfetto_trace.json.gz").write_bytes(b"")
  with pytest.raises(FileNotFoundError,
                     match=r"one trace per process \(process_0, process_1\)"
                           r".*tb/process_0"):
    trace_summary.summarize(str(tmp_path / "tb"))
  a = jnp.ones((1, 256, 256), jnp.float32)
  fn = jax.jit(lambda a: jnp.tanh(a @ a).sum(), device=jax.devices()[0])
  fn(a).block_until_ready()
  with jax.profiler.trace(str(tmp_path), create_perfetto_trace=True):
    fn(a).block_until_ready()
  summary = trace_summary.summarize(str(tmp_path), top=5)
  assert 1 <= len(summary["top"]) <= 5
  ms = [r["ms"] for r in summary["top"]]
  assert ms == sorted(ms, reverse=True) and ms[0] > 0
  assert not any(r["name"].startswith("$") for r in summary["top"])
  assert any("dot" in r["name"] or "fusion" in r["name"]
             for r in summary["top"]), summary["top"]
  summary["step_s"] = 0.5
  text = accelerator.table({
      "machine": {"device_kind": "cpu", "backend": "cpu", "jax": "x"},
      "date": "today", "step": {"n=16 chunk=0 float32": {
          "seconds": 1.0, "compile_s": 2.0, "profile": summary}}})
  assert "Where the profiled step's time went (n=16 chunk=0 float32" in text
  assert f"| `{summary['top'][0]['name']}` |" in text
  text = accelerator.table({
      "machine": {"device_kind": "cpu", "backend": "cpu", "jax": "x"},
      "date": "today", "step": {"n=16 chunk=0 float32": {
          "seconds": 1.0, "compile_s": 2.0, "profile_error": "OSError: x"}}})
  assert "| profile of n=16 chunk=0 float32 failed | - | OSError: x |" in text


def test_a_warm_up_past_its_profile_limit_still_names_its_operations(
    tmp_path):
  # The accelerator run's warm-up step is traced; one that runs past
  # `stop_after_s` has its trace stopped from a timer thread, and the
  # operations recorded until then are reported at once (printed and in
  # summary.md), not after the step, which may never end in time.
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, ROOT)
  from bench import accelerator  # pylint: disable=g-import-not-at-top
  a = jnp.ones((512, 512), jnp.float32)

  @jax.jit
  def step(state, batch, rng, constants):
    del batch, rng, constants
    out = jax.lax.fori_loop(0, 300, lambda i, x: jnp.tanh(x @ a / 512),
                            state)
    return out, None

  state = jax.block_until_ready(step(a, None, None, None)[0])
  t0 = time.perf_counter()
  jax.block_until_ready(step(state, None, None, None)[0])
  once = time.perf_counter() - t0
  profile = tmp_path / "profile"
  _, seconds, info = accelerator._warm_up(  # pylint: disable=protected-access
      step, state, None, None, str(profile), stop_after_s=once / 10)
  assert "profile_error" not in info, info
  prof = info["profile"]
  assert prof["partial"] and prof["step_s"] < seconds
  assert prof["top"] and prof["top"][0]["ms"] > 0
  assert "ran past" in (profile / "summary.md").read_text()
  text = accelerator.table({
      "machine": {"device_kind": "cpu", "backend": "cpu", "jax": "x"},
      "date": "today", "step": {"n=16 chunk=0 float32": {
          "seconds": 1.0, "compile_s": 2.0, "profile": prof}}})
  assert "the warm-up step ran past" in text
  # A step that ends first is traced whole.
  _, _, info = accelerator._warm_up(  # pylint: disable=protected-access
      step, state, None, None, str(tmp_path / "whole"), stop_after_s=600)
  assert info["profile"]["partial"] is False


def test_counting_unrolled_flops_leaves_the_timed_program_rolled():
  # bench/networks.py counts flops with fastconv's tap loop unrolled; the
  # program it times afterwards must still be the one the models run.
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, ROOT)
  from bench import networks  # pylint: disable=g-import-not-at-top
  from otgan_jax.models import fastconv  # pylint: disable=g-import-not-at-top
  c = fastconv.MIN_TAP_CHANNELS
  x = jnp.ones((2, 5, 5, c), jnp.float32)
  grad = lambda k: jax.grad(lambda k: jnp.sum(fastconv.conv2d(x, k)))(k)
  k = jnp.full((3, 3, c, c), 0.01, jnp.float32)
  flops = networks.unrolled_flops(jax.jit(grad), k)
  assert flops >= 9 * 2 * (2 * 5 * 5) * c * c  # every tap's product counted
  timed = jax.jit(grad)
  assert "stablehlo.while" in timed.lower(k).as_text()


def test_accelerator_largest_batch_fits_and_checks(monkeypatch):
  # The largest batch: a quadratic fit of the compiled bytes at three sizes,
  # rounded down to the multiple, then compiled to check (bytes made up
  # here: 1 MiB + n KiB + n^2 bytes; compiles replaced).
  sys.path.insert(0, ROOT)
  from bench import accelerator  # pylint: disable=g-import-not-at-top
  seen = []
  bytes_of = lambda n: 2**20 + 1024 * n + n * n

  def fake_bytes(c):
    seen.append(c.batch_size)
    return bytes_of(c.batch_size)

  monkeypatch.setattr(accelerator, "_compiled_bytes", fake_bytes)
  limit = 2**30
  out = accelerator.largest_batch(0, (1000, 2000, 4000), limit, True, 5,
                                  float("inf"), 500)
  exact = max(n for n in range(0, 40000, 500) if bytes_of(n) <= limit)
  assert out["predicted"] == out["largest"] == exact == 32000
  assert seen == [1000, 2000, 4000, 32000]
  # A fit that overshoots steps down by a tenth until the batch fits.
  monkeypatch.setattr(accelerator, "_compiled_bytes",
                      lambda c: 2**40 if c.batch_size > 20000 else 1)
  out = accelerator.largest_batch(0, (1000, 2000, 4000), limit, True, 5,
                                  float("inf"), 500)
  assert out["largest"] <= 20000 and out["checked"][0][1] == 2**40
  # Bytes that grow a little less than linearly at small sizes (the tiny
  # chunked run's: 20.0, 25.0, 34.2 MB at n = 16, 32, 64) give a quadratic
  # bending down below the limit: the line through the two largest sizes
  # predicts instead.
  points = [(16, 20048320), (32, 24996288), (64, 34232768)]
  root = accelerator._largest_root(points, 2**30)  # pylint: disable=protected-access
  slope = (34232768 - 24996288) / 32
  assert root == pytest.approx(64 + (2**30 - 34232768) / slope)


@pytest.mark.slow
def test_networks_bench_runs_on_tiny_nets(tmp_path):
  # PyTorch is optional (not installed for the tests): its rows are then
  # skipped and ours are still timed, with XLA's flop count.
  out, md = tmp_path / "networks.json", tmp_path / "networks.md"
  _run("bench/networks.py", "--tiny", "--nets=assign_generator",
       f"--out={out}", f"--md={md}")
  rows = json.loads(out.read_text())["rows"]
  ours = {r["mode"]: r for r in rows if r["impl"] == "ours"}
  assert set(ours) == {"fwd", "train"}
  for r in ours.values():
    assert r["seconds"] > 0 and r["gflops"] > 0, r
  # The training pass does more work than the forward pass alone.
  assert ours["train"]["gflops"] * ours["train"]["seconds"] > (
      ours["fwd"]["gflops"] * ours["fwd"]["seconds"])
  assert "assign_generator" in md.read_text()


@pytest.mark.slow
def test_xla_flags_bench_compares_settings_on_tiny_workloads(tmp_path):
  out, md = tmp_path / "xla_flags.json", tmp_path / "xla_flags.md"
  _run("bench/xla_flags.py", "--tiny", "--settings=default,opt_level_1",
       "--workloads=sinkhorn,default_step,test_step", f"--json_out={out}",
       f"--md_out={md}")
  rows = json.loads(out.read_text())["rows"]
  assert [r["setting"] for r in rows] == ["default", "opt_level_1"]
  for r in rows:
    assert "error" not in r["times"], r
    assert all(r["times"][w]["median_s"] > 0 and r["times"][w]["compile_s"] > 0
               for w in ("sinkhorn", "default_step", "test_step")), r
  # Each setting's outputs are compared with the default's, per workload.
  assert set(rows[1]["diff"]) == {"sinkhorn", "default_step", "test_step"}
  assert all(math.isfinite(v) for v in rows[1]["diff"].values())
  assert "--xla_backend_optimization_level=1" in md.read_text()


def test_sinkhorn_passes_bench_times_every_pass(tmp_path):
  limits = tmp_path / "limits.json"
  _run("bench/limits.py", "--tiny", f"--out={limits}")
  stdout = _run("bench/sinkhorn_passes.py", "--n=32", f"--limits={limits}")
  for name in ("scaling col", "scaling row", "log-domain col",
               "log-domain row", "exp-sum rows", "sum rows"):
    assert f"| {name} |" in stdout, stdout
  assert "floor -" not in stdout, stdout


@pytest.mark.slow
def test_conv_passes_bench_times_every_layer_and_pass(tmp_path):
  # PyTorch rows are optional (no torch here); --nofull skips the whole
  # training passes to keep this short.
  out, md = tmp_path / "conv_passes.json", tmp_path / "conv_passes.md"
  _run("bench/conv_passes.py", "--tiny", "--nofull", f"--out={out}",
       f"--md={md}", "--dk_sweep=2x8x4x3x1,2x8x4x4x2")
  rows = json.loads(out.read_text())["rows"]
  timed = {(r["net"], r["pass"], r["impl"]) for r in rows}
  for net in ("otgan_generator", "assign_generator"):
    for name in ("fwd", "dx", "dk"):
      for impl in ("ours", "xla"):
        assert (net, name, impl) in timed, (net, name, impl)
  for r in rows:
    assert r["seconds"] > 0 and r["gflops"] > 0, r
    if r["impl"] != "ours":  # the same layer, the same values
      assert r["max_abs_diff"] <= 1e-3 * max(r["max_abs_ours"], 1.0), r
  text = md.read_text()
  assert "| otgan_generator | conv_0 |" in text
  assert "| assign_generator | deconv_out |" in text
  sweep = json.loads(out.read_text())["dk_sweep"]
  assert [r["shape"] for r in sweep] == ["2x8x4x3x1", "2x8x4x4x2"]
  assert all(r["per_tap_s"] > 0 and r["xla_s"] > 0 and r["default"] == "xla"
             for r in sweep), sweep
  # The critic (strided layers, asymmetric 'SAME' padding), ours only, as
  # the accelerator run times it.
  # With the space-to-depth form of its strided layers: the same values
  # and gradients (the table's max abs diff against ours).
  _run("bench/conv_passes.py", "--tiny", "--nofull", "--nets=otgan_critic",
       "--impls=ours,s2d", f"--out={out}", f"--md={md}")
  rows = json.loads(out.read_text())["rows"]
  assert {r["impl"] for r in rows} == {"ours", "s2d"}
  strided = {r["layer"] for r in rows if " s2" in r["shape"]}
  assert len(strided) >= 2 and all(r["seconds"] > 0 for r in rows), rows
  assert {(r["layer"], r["pass"]) for r in rows if r["impl"] == "s2d"} == {
      (l, p) for l in strided for p in ("fwd", "dx", "dk")}
  assert {(r["layer"], r["pass"]) for r in rows if r["impl"] == "ours"} == {
      (r["layer"], p) for r in rows for p in ("fwd", "dx", "dk")}
  for r in rows:
    if r["impl"] == "s2d":
      assert r["max_abs_diff"] <= 1e-5 * max(r["max_abs_ours"], 1.0), r
  # torch pads both sides alike: its rows are skipped on those layers.
  sys.path.insert(0, ROOT)
  from bench import conv_passes  # pylint: disable=g-import-not-at-top
  layer = {"kind": "conv", "upsample": False, "x": np.zeros((1, 8, 8, 4)),
           "kernel": np.zeros((5, 5, 4, 4)), "strides": (2, 2)}
  assert conv_passes._asymmetric(layer)  # pylint: disable=protected-access
  layer["strides"] = (1, 1)
  assert not conv_passes._asymmetric(layer)  # pylint: disable=protected-access


def test_ot_precision_study_emulates_each_precision():
  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp
  from bench import ot_precision
  # TF32 keeps 10 mantissa bits, rounding to nearest, ties to even.
  x = jnp.asarray([1 + 2**-11, 1 + 3 * 2**-11, 1 + 2**-10, -(1 + 2**-12)],
                  jnp.float32)
  np.testing.assert_array_equal(np.asarray(ot_precision.tf32(x)),
                                [1, 1 + 2**-9, 1 + 2**-10, -1])
  rng = np.random.default_rng(0)
  a, b = (jnp.asarray(rng.normal(size=(8, 512)), jnp.float32)
          for _ in range(2))
  exact = np.asarray(a, np.float64) @ np.asarray(b, np.float64).T
  err = {m: float(np.abs(np.asarray(ot_precision.products(m, a, b))
                         - exact).max())
         for m in ("float32",) + ot_precision.MODES}
  assert (err["float32"] < err["bfloat16_3x"] < err["tensorfloat32"]
          < err["bfloat16"]), err
  feats = jnp.asarray(rng.normal(size=(4, 16, 64)), jnp.float32)
  result = {"machine": {"device_kind": "cpu", "jax": "x"}, "date": "today",
            "features": "normal", "n": 16, "iterations": 20,
            "epsilon": 0.002,
            "loss": ot_precision.loss_rows(feats, 20, 0.002),
            "sparse": ot_precision.sparse_rows([4], 16, d=64)}
  rows = {r["mode"]: r for r in result["loss"]}
  assert math.isfinite(rows["float32"]["loss"])
  assert 0 < rows["tensorfloat32"]["grad_rel_err"] < 0.1
  assert rows["bfloat16"]["cost_max_err"] > rows["tensorfloat32"][
      "cost_max_err"] > 0
  text = ot_precision.table(result)
  assert "| tensorfloat32 | " in text and "| 4 | [" in text


@pytest.mark.slow
def test_the_accelerator_run_rehearses_on_a_cpu(tmp_path):
  # ACCELERATOR_TINY=1 runs bench/accelerator.sh's every command and flag at
  # tiny sizes (about 2 minutes on 2 cores): each file it promises, each
  # row of its table, no part failed or skipped, both profile summaries.
  # Packed into one archive as well (the device tool returns 8 files).
  out, pack = tmp_path / "acc", tmp_path / "accelerator.tgz"
  env = child_processes.child_env(
      JAX_PLATFORMS="cpu", ACCELERATOR_TINY="1", PYTHON=sys.executable,
      PROFILE_DIR=str(tmp_path / "profile"), ACCELERATOR_PACK=str(pack))
  run = subprocess.run(["bash", "bench/accelerator.sh", str(out)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=900)
  assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
  with tarfile.open(pack) as archive:
    packed = {os.path.basename(m.name): m.size for m in archive.getmembers()
              if m.isfile()}
  assert packed == {p.name: p.stat().st_size for p in out.iterdir()}, packed
  for name in ("limits.json", "inception.json", "networks.json",
               "networks.md", "accelerator.json", "accelerator.md",
               "profile_n1000.md", "profile_n4000.md",
               "networks_autotuned.md", "conv_passes.md"):
    assert (out / name).stat().st_size > 0, name
  result = json.loads((out / "accelerator.json").read_text())
  assert not result.get("errors") and not result["skipped"], result
  md = (out / "accelerator.md").read_text()
  for row in ("Sinkhorn per iteration, n=32", "cost products highest",
              "cost products tensorfloat32", "float32, 1 iteration",
              "chunk=8 bfloat16", "share of the step in Sinkhorn",
              "| largest batch, chunk=0 | ", "| largest batch, chunk=8 | ",
              "Inception images/s", "Where the profiled step's time went"):
    assert row in md, row
  assert all(r.get("largest") for r in result["largest_batch"].values())


@pytest.mark.slow
def test_ot_precision_study_runs_on_the_papers_networks(tmp_path):
  # The whole script: the paper's critic and generator at initialisation
  # (uniform noise images without --data_dir), a tiny n.
  out, md = tmp_path / "p.json", tmp_path / "p.md"
  stdout = _run("bench/ot_precision.py", "--n=8", "--iterations=5",
                "--sparse_ks=4", f"--out={out}", f"--md={md}")
  result = json.loads(out.read_text())
  assert [r["mode"] for r in result["loss"]] == [
      "float32", "tensorfloat32", "bfloat16_3x", "bfloat16"]
  assert "uniform noise images" in result["features"]
  assert "| bfloat16 | " in stdout and md.read_text().strip() in stdout
