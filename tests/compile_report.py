"""Where the test suite's time goes: compile, trace and lowering per test.

  OTGAN_TEST_COMPILE_LOG=/tmp/c.jsonl python -m pytest -q
  python tests/compile_report.py /tmp/c.jsonl [--top=30]

Reads the JSON lines tests/conftest.py writes and prints the slowest tests
with their seconds in XLA's backend compiler, in tracing and in lowering
(in-process only: a test's subprocesses count in its total, not in the
compile columns), then the sums.
"""

import argparse
import json


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("log")
  parser.add_argument("--top", type=int, default=30)
  args = parser.parse_args()
  rows = [json.loads(line) for line in open(args.log) if line.strip()]
  rows.sort(key=lambda r: -r["total_s"])
  print("| test | total s | compile s | trace s | lower s | rest s |")
  print("|---|---:|---:|---:|---:|---:|")
  for r in rows[:args.top]:
    rest = r["total_s"] - r["compile_s"] - r["trace_s"] - r["lower_s"]
    print(f"| {r['test']} | {r['total_s']:.1f} | {r['compile_s']:.1f} | "
          f"{r['trace_s']:.1f} | {r['lower_s']:.1f} | {rest:.1f} |")
  sums = {k: sum(r[k] for r in rows)
          for k in ("total_s", "compile_s", "trace_s", "lower_s")}
  print(f"\n{len(rows)} tests: total {sums['total_s']:.0f} s, backend compile "
        f"{sums['compile_s']:.0f} s, trace {sums['trace_s']:.0f} s, lowering "
        f"{sums['lower_s']:.0f} s.")


if __name__ == "__main__":
  main()
