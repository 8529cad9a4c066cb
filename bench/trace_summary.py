r"""Where a profiled program's time went: the top operations of a JAX trace.

  python bench/trace_summary.py TRACE_DIR [--top=25]

`TRACE_DIR` is what `jax.profiler.trace(TRACE_DIR, create_perfetto_trace=True)`
wrote (the newest `plugins/profile/*/perfetto_trace.json.gz` under it is
read). Each operation's time is summed over its calls, per trace process:
on a GPU the device's kernels (`/device:GPU:0`) and the host's work
(`/host:CPU`); on a CPU the XLA thunks run on the host's threads. Python
frames (names starting with `$`) and the executor's own spans are left
out. Spans nest on a CPU (a `while` loop's span holds its body's), so
there the shares can sum to more than the whole.

bench/accelerator.py profiles one CIFAR-10 step with it (`--profile_dir`),
so that a step far slower than the device's rate says which operations. A
training run with `--config.profile.start_step=K` writes `<workdir>/tb`
(one process) or `<workdir>/tb/process_<i>` (several).
"""

import collections
import glob
import gzip
import json
import os

from absl import app
from absl import flags

_LEFT_OUT = ("ThunkExecutor::Execute",)


_TRACE = os.path.join("plugins", "profile", "*", "perfetto_trace.json.gz")


def newest_trace(trace_dir: str) -> str:
  """The newest perfetto trace file under `trace_dir`."""
  found = glob.glob(os.path.join(trace_dir, _TRACE))
  if not found:
    # A run of several processes traces each into tb/process_<i>/.
    per_process = sorted({os.path.relpath(p, trace_dir).split(os.sep)[0]
                          for p in glob.glob(os.path.join(
                              trace_dir, "process_*", _TRACE))})
    if per_process:
      raise FileNotFoundError(
          f"{trace_dir} holds one trace per process ({', '.join(per_process)}"
          f"): pass one of them, e.g. {os.path.join(trace_dir, per_process[0])}.")
    raise FileNotFoundError(
        f"No plugins/profile/*/perfetto_trace.json.gz under {trace_dir}: "
        "profile with jax.profiler.trace(dir, create_perfetto_trace=True).")
  return max(found, key=os.path.getmtime)


def summarize(trace_dir: str, top: int = 25) -> dict:
  """{"file", "processes": {name: total ms}, "top": [{"process", "name",
  "ms", "calls"}, ...]}: the `top` operations by summed duration."""
  path = newest_trace(trace_dir)
  with gzip.open(path, "rt") as f:
    data = json.load(f)
  events = data["traceEvents"] if isinstance(data, dict) else data
  names = {e["pid"]: e["args"]["name"] for e in events
           if e.get("ph") == "M" and e.get("name") == "process_name"}
  total, calls = collections.Counter(), collections.Counter()
  for e in events:
    name = e.get("name", "")
    if (e.get("ph") != "X" or name.startswith("$")
        or name.startswith(_LEFT_OUT)):
      continue
    key = (names.get(e.get("pid"), str(e.get("pid"))), name)
    total[key] += float(e.get("dur", 0.0)) / 1e3  # microseconds -> ms
    calls[key] += 1
  processes = collections.Counter()
  for (process, _), ms in total.items():
    processes[process] += ms
  return {"file": path,
          "processes": {p: round(ms, 3) for p, ms in processes.most_common()},
          "top": [{"process": p, "name": n, "ms": round(ms, 3),
                   "calls": calls[(p, n)]}
                  for (p, n), ms in total.most_common(top)]}


def table(summary: dict) -> str:
  """A markdown table of `summarize`'s top operations."""
  lines = ["| process | operation | ms | calls |", "|---|---|---:|---:|"]
  for r in summary["top"]:
    lines.append(f"| {r['process']} | `{r['name'][:80]}` | {r['ms']:.2f} | "
                 f"{r['calls']} |")
  return "\n".join(lines)


def main(argv):
  if len(argv) != 2:
    raise app.UsageError("usage: python bench/trace_summary.py TRACE_DIR "
                         "[--top=25]")
  summary = summarize(argv[1], flags.FLAGS.top)
  print(f"{summary['file']}\n")
  print(table(summary))


if __name__ == "__main__":
  # Flags only when run as a script: bench/accelerator.py imports this.
  flags.DEFINE_integer("top", 25, "Operations to show.")
  app.run(main)
