"""`train_and_evaluate(config, workdir)`: the training loop of every method.

Builds the `Experiment` (data, mesh, the configured method); restores the
latest checkpoint in the workdir if there is one; prepares the method's
constants; then runs the jitted, sharded train step, logging metrics, sample
grids, evaluations and checkpoints on their schedules.
"""

from __future__ import annotations

import math
import os
import signal

from absl import logging
import jax
import ml_collections
import numpy as np

from otgan_jax import checkpointing
from otgan_jax import experiment as experiment_lib
from otgan_jax import interrupts
from otgan_jax import metric_writers
from otgan_jax import train_state as train_state_lib
from otgan_jax import workdir as workdir_lib
from otgan_jax import workdir_lock
from otgan_jax import data as data_lib
from otgan_jax.data import pipeline
from otgan_jax.evaluation import evaluators

class NonFiniteLossError(FloatingPointError):
  """Training produced a NaN or infinite metric."""


class StoppedBeforeFirstStep(KeyboardInterrupt):
  """SIGTERM or SIGINT arrived before the run's first step: nothing to save.

  A `KeyboardInterrupt`, so it passes `except Exception` like Ctrl-C does;
  `launch.shared.run` prints its message and exits with 128 + `signum`.
  """

  def __init__(self, signum: int):
    super().__init__("stopped before the first step, nothing to save")
    self.signum = signum


class StoppedBySignal(KeyboardInterrupt):
  """A signal (or a preemption) stopped the run after `step`, saved there.

  Raised by `train_and_evaluate(..., raise_on_signal=True)` instead of
  returning the unfinished state, for callers that must not mistake it for
  a finished run (the reproduction suite scores what returns).
  """

  def __init__(self, signum: int, step: int, directory: str):
    super().__init__(f"stopped at step {step} by a signal; checkpoint saved "
                     f"in {directory}; rerun the same command to resume")
    self.signum, self.step = signum, step


# Errors caused by the user's input (config, data, checkpoint), not by bugs: the
# launchers print their message, which says what to do, without a traceback.
USER_ERRORS = (ValueError, data_lib.DataError, checkpointing.CheckpointError,
               NonFiniteLossError, workdir_lock.WorkdirLockedError)


def _check_finite(step: int, scalars: dict[str, float], last_saved,
                  advice: str) -> None:
  bad = [k for k, v in scalars.items() if not math.isfinite(v)]
  if bad:
    kept = ("no checkpoint had been written yet" if last_saved is None else
            f"the last good checkpoint (step {last_saved}) is kept, and a "
            "rerun resumes from it")
    raise NonFiniteLossError(
        f"Non-finite {', '.join(bad)} at step {step}. The run stopped; "
        f"{kept}. {advice}")


class _Profiler:
  """Traces steps `start + 1 .. start + num` with `jax.profiler` (opt-in).

  The trace goes to `<workdir>/tb/plugins/profile/`, where TensorBoard's
  Profile tab finds it, with a perfetto copy (`perfetto_trace.json.gz`:
  ui.perfetto.dev, or the top operations in a terminal with
  `python bench/trace_summary.py <workdir>/tb`). With several processes,
  process i writes under `<workdir>/tb/process_i/`: jax.profiler names a
  trace's folder by the second and its file by the host, and makes the
  perfetto copy from the one trace in that folder, so processes on one host
  or sharing a workdir would overwrite or break each other's traces. With
  `start >= 1` the compilation of the step happened before and stays out of
  it.
  """

  def __init__(self, config: ml_collections.ConfigDict, workdir: str):
    self.start = config.profile.start_step
    if self.start >= 0 and config.profile.num_steps < 1:
      raise ValueError("config.profile.num_steps must be at least 1, got "
                       f"{config.profile.num_steps}.")
    self.stop = self.start + config.profile.num_steps
    self.log_dir = os.path.join(workdir, "tb")
    if jax.process_count() > 1:
      self.log_dir = os.path.join(self.log_dir,
                                  f"process_{jax.process_index()}")
    self.active = False

  def check_first_step(self, done: int) -> None:
    """Warns when a resumed run starts past the steps to trace."""
    if 0 <= self.start < done:
      logging.warning("config.profile.start_step=%d: this run resumes after "
                      "step %d, so nothing will be profiled.", self.start,
                      done)

  def before(self, step: int) -> None:
    """Called before running step `step + 1` (`step` steps done)."""
    if self.start >= 0 and step == self.start and not self.active:
      jax.profiler.start_trace(self.log_dir, create_perfetto_trace=True)
      self.active = True
      logging.info("Profiling steps %d-%d into %s", step + 1, self.stop,
                   self.log_dir)

  def after(self, step: int, state) -> None:
    """Called after step `step`; ends the trace after the last traced step."""
    if self.active and step >= self.stop:
      self.close(state)

  def close(self, state=None) -> None:
    if self.active:
      if state is not None:
        jax.block_until_ready(state)
      jax.profiler.stop_trace()
      self.active = False
      logging.info("Profile written to %s (TensorBoard: Profile tab; the "
                   "top operations: python bench/trace_summary.py %s)",
                   self.log_dir, self.log_dir)


class _SignalFlag:
  """SIGTERM/SIGINT: before the first step an error, then a flag.

  Until `started` is set (after the first step), a signal raises
  `StoppedBeforeFirstStep`: start-up and compilation stop at once, and the
  `finally` clauses close what was opened. From then on it only sets
  `signum`, which the loop checks after each step (and the prefetcher while
  it waits), so the run saves the step it reached and ends.

  The signal is recorded before it raises: a handler can run inside code that
  cannot raise (JAX's garbage-collector callback, a `__del__`), where Python
  swallows the error; `otgan_jax.interrupts` then delivers the signal again,
  and whatever happens the loop raises the recorded stop itself before and
  right after the first step (`raise_if_stopped_early`): no signal is lost.

  A signal the process inherited as ignored (SIGINT in a job a script put
  in the background, which Ctrl-C in its terminal must not stop) stays
  ignored, as Python itself leaves it.

  With several processes nothing is caught here: JAX's preemption service
  (started by `jax.distributed.initialize`) handles SIGTERM and makes all
  processes agree on one step at which they save and stop
  (`Checkpointer.reached_preemption`), so no process waits forever on a
  collective that another one has left.
  """

  def __init__(self):
    self.signum = None
    self.started = False
    self._previous = {}

  def __enter__(self):
    signals = (signal.SIGTERM, signal.SIGINT)
    if jax.process_count() > 1:
      signals = ()
    for sig in signals:
      try:
        if signal.getsignal(sig) is not signal.SIG_IGN:
          self._previous[sig] = signal.signal(sig, self._handle)
      except ValueError:  # Not the main thread: no handlers.
        pass
    if self._previous:
      interrupts.install()
    return self

  def _handle(self, signum, frame):
    del frame
    self.signum = signum
    if not self.started:
      raise StoppedBeforeFirstStep(signum)

  def is_set(self) -> bool:
    return self.signum is not None

  def raise_if_stopped_early(self) -> None:
    """Raises the recorded signal's `StoppedBeforeFirstStep` if no step ran."""
    if self.signum is not None and not self.started:
      raise StoppedBeforeFirstStep(self.signum)

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


class _Steps:
  """`(step, None)` for steps `[start, stop)`: a method that reads no data."""

  def __init__(self, start: int, stop: int):
    self._steps = iter(range(start, stop))

  def __iter__(self):
    return self

  def __next__(self):
    return next(self._steps), None

  def close(self) -> None:
    pass


def _batches(exp: experiment_lib.Experiment, start: int, stop: int,
             stop_when=None):
  """The loop's `(step, batch)` pairs, prefetched if the method reads data."""
  spec = exp.batch_spec
  if spec is None:
    return _Steps(start, stop)
  return pipeline.Prefetcher(
      exp.source, start, stop, num_updates=spec.num_updates,
      batch_size=exp.config.batch_size, sharding=exp.batch_sharding(),
      batch_axis=experiment_lib.BATCH_AXIS, with_labels=spec.labels,
      draws=spec.draws, stop_when=stop_when)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       raise_on_signal: bool = False
                       ) -> train_state_lib.TrainState:
  """Trains to `config.total_steps`, resuming from `workdir` if possible.

  Args:
    config: the experiment config.
    workdir: the run's folder.
    raise_on_signal: after a signal (or a preemption) stopped the run and
      its step was saved, raise `StoppedBySignal` instead of returning the
      unfinished state.

  Returns:
    The final train state.

  Raises:
    StoppedBeforeFirstStep: SIGTERM or SIGINT before the first step (one
      process); later ones save the step reached and return (or raise
      `StoppedBySignal`, with `raise_on_signal`).
    One of `USER_ERRORS` for bad input, with what to do.
  """
  if config.total_steps <= 0:
    raise ValueError(f"config.total_steps must be positive, got "
                     f"{config.total_steps}.")
  # A misspelt metric is an error even when none runs during training.
  if evaluators.parse_metrics(config.evals.metrics) and (
      config.evals.every_steps <= 0):
    logging.info(
        "config.evals.metrics=%r is not computed during training "
        "(config.evals.every_steps=%d); set --config.evals.every_steps=N, or "
        "run `python -m launch.evaluate --workdir=%s` on a checkpoint.",
        config.evals.metrics, config.evals.every_steps, workdir)
  with _SignalFlag() as interrupted:
    exp = experiment_lib.Experiment(config)
    profiler = _Profiler(config, workdir)  # Checks its settings up front.
    is_main = jax.process_index() == 0
    workdir_lib.prepare_workdir(workdir)
    # One run per workdir: process 0 holds the lock for the run's lifetime.
    lock = workdir_lock.WorkdirLock(workdir) if is_main else None
    if lock is not None:
      lock.acquire()
    logging.info("Config:\n%s", config)
    try:
      state = _train(config, workdir, exp, profiler, is_main, interrupted)
    finally:
      if lock is not None:
        lock.release()
  step = int(state.step)
  if raise_on_signal and step < config.total_steps:
    raise StoppedBySignal(interrupted.signum or signal.SIGTERM, step,
                          os.path.join(workdir, "checkpoints"))
  return state


def _train(config, workdir, exp, profiler, is_main, interrupted):
  ckpt = checkpointing.Checkpointer(workdir, every_steps=config.ckpt.every_steps,
                                    max_to_keep=config.ckpt.max_to_keep)
  batches = writer = None
  try:
    latest = ckpt.latest_step()
    constants = exp.prepare(workdir, fresh=latest is None)
    if latest is None:
      state = exp.init_state()
      logging.info("Initialised a new run in %s", workdir)
    else:
      latest, state, skipped = ckpt.restore_latest(exp.abstract_state())
      if skipped:
        logging.warning("Checkpoint(s) %s failed verification and were "
                        "skipped (kept in %s_corrupt).", skipped,
                        ckpt.directory)
      logging.info("Resumed from %s at step %d", ckpt.directory, latest)
      if latest >= config.total_steps:
        logging.info("Nothing to do: the latest checkpoint is step %d and "
                     "config.total_steps=%d.", latest, config.total_steps)
        return state
    start = int(state.step)
    if is_main:
      workdir_lib.write_config(config, workdir, start)
      workdir_lib.write_info(exp.info, workdir)
      # Steps after the checkpoint are replayed now: log each step once.
      workdir_lib.trim_metrics(workdir, start)
    writer = metric_writers.MetricWriter(workdir, enabled=is_main)
    batches = _batches(exp, start, config.total_steps,
                       stop_when=interrupted.is_set)
    try:
      return _loop(config, workdir, exp, profiler, is_main, interrupted,
                   ckpt, writer, batches, state, constants, latest)
    except OSError as e:  # metrics, TensorBoard or a sample file
      full = ckpt.out_of_space_error(e)
      if full is None:
        raise
      raise full from e
  finally:
    profiler.close()
    if batches is not None:
      batches.close()
    try:
      ckpt.close()
    finally:
      if writer is not None:
        try:
          writer.close()
        except OSError as e:  # Flushing onto a full disk.
          full = ckpt.out_of_space_error(e)
          if full is None:
            raise
          raise full from e  # pylint: disable=lost-exception


def _loop(config, workdir, exp, profiler, is_main, interrupted, ckpt, writer,
          batches, state, constants, latest):
  """The steps; returns the final state (also when stopped by a signal)."""
  train_step = None  # Compiled for the first batch, once it fits (below).
  generate = exp.jit_generate(config.num_samples)
  sample_rng = jax.random.fold_in(jax.random.key(config.seed), 1)
  base_rng = jax.random.fold_in(jax.random.key(config.seed), 2)
  start = int(state.step)
  progress = metric_writers.Progress(config.total_steps, start)
  evaluator, eval_rng = None, jax.random.fold_in(jax.random.key(config.seed), 3)
  if config.evals.metrics and config.evals.every_steps > 0:
    evaluator = evaluators.Evaluator(
        config.evals, info=exp.info, data_config=config.data,
        source=exp.source, cache_dir=os.path.join(workdir, "eval"),
        mesh=exp.mesh)
  last_saved = latest
  step = start
  stopped = False
  profiler.check_first_step(start)

  def check(step, metrics):
    # The only host sync of a step; a NaN is caught before anything is
    # written for it (log line, sample grid, evaluation, checkpoint).
    scalars = {k: float(v) for k, v in jax.device_get(metrics).items()}
    verified = (last_saved if last_saved is not None
                and ckpt.verified(last_saved) else None)
    _check_finite(step, scalars, verified, exp.method.nonfinite_advice())
    return scalars

  for step_index, batch in batches:
    interrupted.raise_if_stopped_early()
    if train_step is None:
      train_step = exp.compile_train_step(state, batch, base_rng, constants)
    profiler.before(step_index)
    state, metrics = train_step(state, batch, base_rng, constants)
    interrupted.raise_if_stopped_early()  # Recorded during the first step.
    # From here on a signal saves the step reached instead of raising.
    interrupted.started = True
    step = step_index + 1
    profiler.after(step, state)
    final = step == config.total_steps
    preempted = interrupted.is_set() or ckpt.reached_preemption(step)
    save = ckpt.should_save(step) or final or preempted
    log = step % config.log_every_steps == 0 or final or preempted
    sample = step % config.sample_every_steps == 0 or final
    evaluate = evaluator is not None and (
        step % config.evals.every_steps == 0 or final)
    if log or save or sample or evaluate:
      scalars = check(step, metrics)
      if log:
        writer.write_scalars(step, scalars)
        logging.info(progress.line(step, scalars))
    if sample:
      samples = np.asarray(generate(state.ema_params, sample_rng))
      if is_main:
        workdir_lib.save_samples(exp, samples, os.path.join(
            workdir, "samples", f"step_{step:07d}.png"), writer, step)
    if evaluate:
      results = evaluator(exp.sample(state.ema_params,
                                     config.evals.num_samples, eval_rng))
      if is_main:
        writer.write_scalars(step, {f"eval/{k}": v
                                    for k, v in results.items()})
        evaluators.write_results(workdir, step, results, config)
      logging.info("step %d eval: %s", step, ", ".join(
          f"{k}={v:.4g}" for k, v in results.items()))
    if save:
      ckpt.save(step, state)
      last_saved = step
    if preempted:
      stopped = True
      break
  # A signal the handler could not raise (see `_SignalFlag`), which ended
  # the prefetcher's wait before the first step.
  interrupted.raise_if_stopped_early()
  if interrupted.is_set() and not stopped:
    # The signal came while the loop waited for input (the prefetcher's
    # `stop_when` ended the iteration): the step reached is not saved yet.
    stopped = True
    if last_saved != step:
      check(step, metrics)
      ckpt.save(step, state)
  if stopped:
    logging.warning(
        "Stopped at step %d by a signal; checkpoint saved in %s. Rerun "
        "the same command to resume.", step, ckpt.directory)
  if step == config.total_steps:
    logging.info("Done: %d steps. Checkpoints in %s, samples in %s.", step,
                 ckpt.directory, os.path.join(workdir, "samples"))
  return state
