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
so that a step far slower than the device's rate says which operations;
`StoppableTrace` stops the trace after a time limit and summarises what
ran until then, for a step that may never end in time. A
training run with `--config.profile.start_step=K` writes `<workdir>/tb`
(one process) or `<workdir>/tb/process_<i>` (several).
"""

import collections
import glob
import gzip
import json
import os
import threading
import time

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


def error_line(e: Exception) -> str:
  """An exception as one short line for a JSON and a table."""
  return f"{type(e).__name__}: {e}"[:500]


class StoppableTrace:
  """JAX's profiler around one call, stopped by a timer if the call runs
  past `stop_after_s`: the operations that ran until then are printed and
  written to `<profile_dir>/summary.md` at once, so a call that never ends
  in time still says where its time went. Stopping JAX's profiler from
  another thread while a program runs keeps the events recorded so far (on
  XLA:CPU a 3 s loop stopped after 2 s gave its first 282 of 400
  iterations). A failing profiler never raises: its error goes to
  `info["profile_error"]`. Start it just before the call, then
  `finish(seconds)` after it.
  """

  def __init__(self, profile_dir: str, stop_after_s: float,
               what: str = "the call"):
    import jax  # pylint: disable=g-import-not-at-top
    self._profiler = jax.profiler
    self.dir, self.what, self.info = profile_dir, what, {}
    self._lock = threading.Lock()
    self._running = False
    self._t0 = time.perf_counter()
    try:
      self._profiler.start_trace(profile_dir, create_perfetto_trace=True)
      self._running = True
    except Exception as e:  # pylint: disable=broad-except
      self.info["profile_error"] = error_line(e)
      print(f"profile failed: {self.info['profile_error']}", flush=True)
    self._timer = threading.Timer(stop_after_s, self._stop, (True,))
    self._timer.daemon = True
    if self._running:
      self._timer.start()

  def _stop(self, partial: bool, seconds: float | None = None) -> None:
    """Stops the trace once; `seconds` is the call's (else since start)."""
    with self._lock:
      if not self._running:
        return
      self._running = False
      if seconds is None:
        seconds = time.perf_counter() - self._t0
      try:
        self._profiler.stop_trace()
        summary = summarize(self.dir)
        summary["step_s"], summary["partial"] = seconds, partial
        head = (f"{self.what} ran past {seconds:.1f} s; its operations "
                "until then" if partial else
                f"{self.what} ({seconds:.3f} s)")
        text = (f"Where the time went ({head}):\n\n"
                f"{table(summary)}")
        print(text, flush=True)
        self.info["profile"] = summary
        with open(os.path.join(self.dir, "summary.md"), "w") as f:
          f.write(text + "\n")
      except Exception as e:  # pylint: disable=broad-except
        self.info["profile_error"] = error_line(e)
        print(f"profile failed: {self.info['profile_error']}", flush=True)

  def finish(self, seconds: float) -> dict:
    """Stops the trace (if the timer has not) and returns the info."""
    self._timer.cancel()
    self._stop(partial=False, seconds=seconds)
    return self.info


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
