"""The sweep: every (op, dtype) through kiln, in worker processes, gathered into one results doc.

Work runs in spawned worker processes (one per core by default) so that the sweep uses the
machine and so that a crash in kiln's C++ (an abort, a segfault) costs one task, not the run:
the worker is replaced and the task retried op by op, then sample by sample; a sample that still
kills its worker is a failure ("crashed") with its repro. A task past its time limit is handled
the same way.

Two kinds of task: ``plan`` scans torch's OpInfos for one dtype (opinfo_scan.plan_dtype) and
returns the chosen samples of every op; ``run`` compiles and runs the samples of a few ops at one
dtype as one program (harness.run_groups; see SAMPLES_PER_PROGRAM). Plans are queued first,
fp32 first; each finished plan queues its runs.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime
import multiprocessing
import multiprocessing.connection
import os
import pickle
import time
from typing import Callable, Optional

from conformance import harness, opinfo_scan, ops, repro, samples

# The CI configuration: a few samples per (op, dtype), the first samples of each OpInfo.
CI_BUDGET = 4
CI_SAMPLES_PER_OPINFO = 32

# Ops kiln claims run several to a program (about this many samples): export and lowering cost
# some half a second whatever the program's size, so batching cuts a sweep's time severalfold.
# A batch that does not pass cleanly is retried op by op (harness.run_groups).
SAMPLES_PER_PROGRAM = 32

RESULTS_SCHEMA = 1


@dataclasses.dataclass
class SweepConfig:
    device: str = "cpu"
    dtypes: tuple[str, ...] = tuple(samples.DTYPES)
    ops: Optional[tuple[str, ...]] = None          # None: ops.op_names()
    budget: Optional[int] = CI_BUDGET               # samples per (op, dtype); None: every one
    samples_per_opinfo: Optional[int] = CI_SAMPLES_PER_OPINFO  # None: every sample
    workers: int = max(1, os.cpu_count() or 1)
    plan_timeout_s: float = 900.0
    run_timeout_s: float = 300.0
    # (op, dtype) pairs to run; None runs every op at every dtype of the config.
    only: Optional[frozenset[tuple[str, str]]] = None


# --- worker side ---------------------------------------------------------------------------------

def _worker_main(connection) -> None:
    """A worker's loop: receive a task, send back ("ok", value) or ("error", text)."""
    os.environ.setdefault("KILN_NUM_THREADS", "1")
    import warnings

    import torch

    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    op_db = None
    while True:
        try:
            task = connection.recv()
        except EOFError:
            return
        kind, payload = task
        try:
            if kind == "plan":
                if op_db is None:
                    op_db = opinfo_scan.load_op_db()
                dtype, wanted, budget, per_opinfo = payload
                plan = opinfo_scan.plan_dtype(op_db, wanted, dtype, budget, per_opinfo)
                value = pickle.dumps(plan)
            elif kind == "run":
                dtype, group_bytes, device = payload
                value = harness.run_groups(pickle.loads(group_bytes), device)
            else:
                raise ValueError(f"unknown task kind {kind!r}")
            connection.send(("ok", value))
        except opinfo_scan.SamplesUnavailable as error:
            connection.send(("unavailable", str(error)))
        except Exception as error:  # noqa: BLE001 - reported to the parent with the traceback
            import traceback

            connection.send(("error", f"{type(error).__name__}: {error}\n"
                                      f"{traceback.format_exc(limit=8)}"))


# --- parent side ---------------------------------------------------------------------------------

@dataclasses.dataclass
class _Task:
    """A plan (scan one dtype) or a run (one program of some ops' samples at one dtype)."""

    kind: str                                   # "plan" or "run"
    dtype: str
    plan_args: tuple = ()                       # a plan's (wanted, budget, per_opinfo)
    groups: dict = dataclasses.field(default_factory=dict)  # a run's {op: [Sample]}
    device: str = "cpu"

    @classmethod
    def plan(cls, dtype: str, wanted: list, budget, per_opinfo) -> "_Task":
        return cls("plan", dtype, plan_args=(wanted, budget, per_opinfo))

    @classmethod
    def run(cls, dtype: str, groups: dict, device: str) -> "_Task":
        return cls("run", dtype, groups=groups, device=device)

    @property
    def payload(self) -> tuple:
        if self.kind == "plan":
            return (self.dtype, *self.plan_args)
        return (self.dtype, pickle.dumps(self.groups), self.device)


class _Worker:
    def __init__(self, context):
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.task: Optional[_Task] = None
        self.started = 0.0

    def give(self, task: _Task) -> None:
        self.task, self.started = task, time.monotonic()
        self.connection.send((task.kind, task.payload))

    def stop(self, graceful: bool = False) -> None:
        """Ends the worker: an idle one by closing its pipe (it returns), a stuck one by
        SIGKILL."""
        if graceful and self.process.is_alive():
            self.connection.close()
            self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.connection.close()


class SweepError(RuntimeError):
    pass


class SamplesUnavailable(SweepError):
    """torch's OpInfo database cannot be loaded in the workers."""


def _batches(plan: dict[str, list], claimed: set[str]) -> list[dict[str, list]]:
    """Groups a dtype's ops into programs: ops kiln claims, about SAMPLES_PER_PROGRAM samples
    each; every other op alone (kiln is expected to decline it, which would split a batch)."""
    batches, current, size = [], {}, 0
    for op in sorted(plan):
        if op not in claimed:
            batches.append({op: plan[op]})
            continue
        current[op] = plan[op]
        size += len(plan[op])
        if size >= SAMPLES_PER_PROGRAM:
            batches.append(current)
            current, size = {}, 0
    if current:
        batches.append(current)
    return batches


def run_sweep(config: SweepConfig, progress: Optional[Callable[[str], None]] = None) -> dict:
    """Runs the sweep and returns the results document (see :func:`results_document`)."""
    from kiln import _C

    started = time.monotonic()
    say = progress or (lambda message: None)
    claimed = set(_C.supported_op_names())
    op_list = list(config.ops or ops.op_names())
    wanted_by_dtype = {d: [o for o in op_list if config.only is None or (o, d) in config.only]
                       for d in config.dtypes}
    queue: collections.deque[_Task] = collections.deque(
        _Task.plan(d, wanted_by_dtype[d], config.budget, config.samples_per_opinfo)
        for d in config.dtypes if wanted_by_dtype[d])
    outcomes: dict[tuple[str, str], list] = {}
    planned_runs = 0
    context = multiprocessing.get_context("spawn")
    workers = [_Worker(context) for _ in range(max(1, config.workers))]

    def record(dtype: str, groups: dict) -> None:
        for op, op_outcomes in groups.items():
            outcomes.setdefault((op, dtype), []).extend(op_outcomes)
        done = len(outcomes)
        if done // 100 != (done - len(groups)) // 100:
            say(f"  {done} of {planned_runs} (op, dtype) pairs done, "
                f"{time.monotonic() - started:.0f} s")

    def split_or_fail(task: _Task, why: str) -> None:
        """A run that crashed or timed out: retry op by op, then sample by sample; a lone
        sample that still does is a failure with its repro."""
        if len(task.groups) > 1:
            for op, op_samples in task.groups.items():
                queue.appendleft(_Task.run(task.dtype, {op: op_samples}, config.device))
            return
        (op, op_samples), = task.groups.items()
        if len(op_samples) > 1:
            pieces = [{op: [sample]} for sample in op_samples]
            # Outcomes of one op arrive piece by piece; keep the samples' order.
            for piece in reversed(pieces):
                queue.appendleft(_Task.run(task.dtype, piece, config.device))
            return
        sample = op_samples[0]
        outcome = harness.SampleOutcome("fail", sample.describe(), sample.origin,
                                        tuple(sample.features), why, numel=sample.numel(),
                                        repro=repro.repro_script(sample, config.device))
        record(task.dtype, {op: [outcome]})

    try:
        while queue or any(w.task for w in workers):
            for worker in workers:
                if worker.task is None and queue:
                    worker.give(queue.popleft())
            busy = [w for w in workers if w.task is not None]
            waitables = [w.connection for w in busy] + [w.process.sentinel for w in busy]
            multiprocessing.connection.wait(waitables, timeout=1.0)
            for index, worker in enumerate(workers):
                task = worker.task
                if task is None:
                    continue
                reply = None
                if worker.connection.poll():
                    try:
                        reply = worker.connection.recv()
                    except (EOFError, OSError):
                        reply = None
                if reply is None:
                    limit = config.plan_timeout_s if task.kind == "plan" else \
                        config.run_timeout_s * max(1, len(task.groups))
                    died = not worker.process.is_alive()
                    late = time.monotonic() - worker.started > limit
                    if not died and not late:
                        continue
                    why = (f"crashed (exit code {worker.process.exitcode})" if died
                           else f"timed out after {limit:.0f} s")
                    worker.stop()
                    workers[index] = _Worker(context)
                    if task.kind == "plan":
                        raise SweepError(f"scanning {task.dtype} samples {why}")
                    split_or_fail(task, why)
                    continue
                worker.task = None
                status, value = reply
                if status == "unavailable":
                    raise SamplesUnavailable(value)
                if status == "error":
                    if task.kind == "plan":
                        raise SweepError(f"scanning {task.dtype} samples failed: {value}")
                    split_or_fail(task, f"harness error: {value.splitlines()[0]}")
                    continue
                if task.kind == "plan":
                    plan = pickle.loads(value)
                    planned_runs += len(plan)
                    say(f"{task.dtype}: samples for {len(plan)} of "
                        f"{len(wanted_by_dtype[task.dtype])} ops "
                        f"({sum(len(v) for v in plan.values())} samples), "
                        f"{time.monotonic() - started:.0f} s")
                    for groups in _batches(plan, claimed):
                        queue.append(_Task.run(task.dtype, groups, config.device))
                else:
                    record(task.dtype, value)
    finally:
        for worker in workers:
            worker.stop(graceful=worker.task is None)
    say(f"done in {time.monotonic() - started:.0f} s")
    return results_document(config, op_list, outcomes, time.monotonic() - started)


def results_document(config: SweepConfig, op_list: list[str], outcomes: dict,
                     elapsed_s: float) -> dict:
    """The JSON-able results: per op, per dtype, harness.summarize's verdict."""
    import torch

    try:
        import kiln

        kiln_version = kiln.__version__
    except ImportError:
        kiln_version = None
    flags = {op.name: op for op in ops.conformance_ops()}
    entries = {}
    for op in op_list:
        per_dtype = {}
        for dtype in config.dtypes:
            if config.only is not None and (op, dtype) not in config.only:
                continue
            found = outcomes.get((op, dtype))
            per_dtype[dtype] = harness.summarize(found) if found else harness.summarize([])
        entries[op] = {"core": flags[op].core if op in flags else False,
                       "kept_whole": flags[op].kept_whole if op in flags else False,
                       "dtypes": per_dtype}
    return {
        "schema": RESULTS_SCHEMA,
        "device": config.device,
        "backend": backend_name(config.device),
        "torch": torch.__version__,
        "kiln": kiln_version,
        "budget": config.budget,
        "samples_per_opinfo": config.samples_per_opinfo,
        "dtypes": list(config.dtypes),
        "core_aten_count": len(ops.core_aten_overloads()),
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed_s": round(elapsed_s, 1),
        "ops": entries,
    }


def backend_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return f"cuda ({torch.cuda.get_device_name()})"
        return "cuda"
    return "reference (cpu)"
