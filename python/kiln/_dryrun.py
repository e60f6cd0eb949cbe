"""The dry-run report: what compile() would build, from the partition plan the C++ core returns.

The plan is a dict::

    {"total_ops": int, "supported_ops": int, "min_block_size": int, "partitioner": "fast"|"global",
     "unsupported": [{"op": "aten.nonzero.default", "reason": str, "nodes": [str]}],
     "segments": [{"name": "_run_on_acc_0", "kind": "acc"|"torch", "nodes": [str],
                   "compute_ops": int, "inputs": [{"name", "dtype", "shape"}], "outputs": [...]}],
     "candidate_block_sizes": [int]}

``candidate_block_sizes`` holds the size (compute ops) of every block of supported ops the
partitioner found before ``min_block_size`` was applied, so the report can say what each other
threshold would have accelerated.
"""
from __future__ import annotations

import logging
import os
import tempfile
import textwrap
from typing import Any, Union

logger = logging.getLogger("kiln")

# Engines of fewer ops than this rarely repay the graph break around them, so the recommendation
# never goes below it.
TINY_BLOCK_OPS = 3
_WIDTH = 100


def _percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


def _wrapped(items: list[str], indent: str) -> list[str]:
    if not items:
        return [indent + "(none)"]
    return textwrap.wrap(", ".join(items), width=_WIDTH, initial_indent=indent,
                         subsequent_indent=indent, break_on_hyphens=False)


def _io_line(values: list[dict]) -> str:
    if not values:
        return "(none)"
    return ", ".join(f"{v.get('name', '?')}: {v.get('dtype', '?')}{v.get('shape', '')}"
                     for v in values)


def _require(plan: Any, key: str, kind: type) -> Any:
    if not isinstance(plan, dict):
        raise TypeError(f"dry-run plan must be a dict, found {type(plan).__name__}")
    if key not in plan:
        raise ValueError(f"dry-run plan lacks {key!r}; it has {sorted(plan)}")
    value = plan[key]
    if not isinstance(value, kind):
        raise TypeError(f"dry-run plan {key!r} must be a {kind.__name__}, found "
                        f"{type(value).__name__}")
    return value


def _setting(settings: Any, name: str, default: Any) -> Any:
    return getattr(settings, name, default) if settings is not None else default


def _block_size_section(sizes: list[int], current: int, graph_ops: int) -> list[str]:
    lines = ["min_block_size"]
    if not sizes:
        lines.append("  no blocks of supported ops were found, so no min_block_size helps")
        return lines
    total_ops = sum(sizes)
    thresholds = sorted(set(sizes) | {current})
    lines.append(f"  {len(sizes)} candidate blocks of supported ops ({total_ops} ops); "
                 "what each min_block_size would accelerate:")
    lines.append(f"    {'min_block_size':>14}  {'engines':>7}  ops accelerated (of the graph)")
    for t in thresholds:
        kept = [s for s in sizes if s >= t]
        mark = "  (current)" if t == current else ""
        lines.append(f"    {t:>14}  {len(kept):>7}  {sum(kept):>6}  "
                     f"{_percent(sum(kept), graph_ops):>6}{mark}")
    dropped = [s for s in sizes if s < current]
    if dropped:
        lines.append(f"  min_block_size={current} leaves {len(dropped)} block(s) of "
                     f"{sum(dropped)} supported op(s) to PyTorch (sizes {sorted(dropped)}).")
    # The smallest threshold at or above the tiny-engine floor keeps every block worth an engine,
    # so it accelerates the most ops without tiny engines.
    worthwhile = [s for s in sizes if s >= TINY_BLOCK_OPS]
    if not worthwhile:
        lines.append(f"  every candidate block has fewer than {TINY_BLOCK_OPS} ops; engines that "
                     "small rarely pay for the graph break around them, so kiln recommends "
                     "running this graph in PyTorch.")
        return lines
    best = min(worthwhile)
    best_ops = sum(worthwhile)
    current_ops = sum(s for s in sizes if s >= current)
    if best == current or best_ops == current_ops:
        advice = (f"recommendation: min_block_size={current} (current) already accelerates every "
                  f"block of {TINY_BLOCK_OPS} or more ops.")
    else:
        advice = (f"recommendation: min_block_size={best} accelerates {best_ops} ops in "
                  f"{len(worthwhile)} engines (current: {current_ops} ops in "
                  f"{sum(1 for s in sizes if s >= current)} engines); smaller values add only "
                  f"engines of fewer than {TINY_BLOCK_OPS} ops.")
    lines.extend(textwrap.wrap(advice, width=_WIDTH, initial_indent="  ",
                               subsequent_indent="    "))
    return lines


def format_dryrun_report(plan: dict, settings: Any = None) -> str:
    """The report as text: op support, unsupported ops and their reasons, the engines kiln would
    build with their inputs and outputs, what stays in PyTorch, and min_block_size advice."""
    total = _require(plan, "total_ops", int)
    supported = _require(plan, "supported_ops", int)
    segments = _require(plan, "segments", list)
    unsupported = plan.get("unsupported") or []
    candidates = [int(s) for s in plan.get("candidate_block_sizes") or []]
    min_block = int(plan.get("min_block_size", _setting(settings, "min_block_size", 5)))
    partitioner = plan.get("partitioner")
    if partitioner is None:
        partitioner = "fast" if _setting(settings, "use_fast_partitioner", True) else "global"

    acc = [s for s in segments if s.get("kind") == "acc"]
    torch_segments = [s for s in segments if s.get("kind") == "torch"]
    lines = ["kiln dry run: the graph was partitioned; no engines were built"]
    precisions = _setting(settings, "enabled_precisions", None)
    setting_bits = [f"min_block_size={min_block}", f"partitioner={partitioner}"]
    if precisions:
        setting_bits.append("precisions=" + ",".join(sorted(str(p) for p in precisions)))
    if _setting(settings, "require_full_compilation", False):
        setting_bits.append("require_full_compilation=True")
    lines.append("  settings: " + ", ".join(setting_bits))
    executed = sorted(_setting(settings, "torch_executed_ops", None) or [])
    if executed:
        lines.append("  torch_executed_ops: " + ", ".join(executed))

    lines.append("")
    lines.append(f"Ops: {total} in the graph, {supported} supported by kiln "
                 f"({_percent(supported, total)})")

    lines.append("")
    n_unsupported = sum(len(u.get("nodes") or []) for u in unsupported)
    lines.append(f"Unsupported ops: {len(unsupported)} kind(s), {n_unsupported} node(s)")
    if not unsupported:
        lines.append("  (none)")
    for u in sorted(unsupported, key=lambda u: (-len(u.get("nodes") or []), u.get("op", ""))):
        nodes = list(u.get("nodes") or [])
        lines.append(f"  {u.get('op', '?')} x{len(nodes)}: {u.get('reason') or 'no reason given'}")
        lines.extend(_wrapped(nodes, "      nodes: ") if nodes else [])

    lines.append("")
    left = [n for s in torch_segments for n in (s.get("nodes") or [])]
    lines.append(f"Nodes left to PyTorch: {len(left)} in {len(torch_segments)} segment(s)")
    for s in torch_segments:
        nodes = list(s.get("nodes") or [])
        lines.append(f"  {s.get('name', '?')} ({s.get('compute_ops', len(nodes))} ops):")
        lines.extend(_wrapped(nodes, "      "))
    if not torch_segments:
        lines.append("  (none)")

    lines.append("")
    lines.append(f"Engines: {len(acc)}")
    for s in acc:
        lines.append(f"  {s.get('name', '?')}: {s.get('compute_ops', 0)} ops")
        lines.append(f"    inputs:  {_io_line(s.get('inputs') or [])}")
        lines.append(f"    outputs: {_io_line(s.get('outputs') or [])}")

    lines.append("")
    sizes = [int(s.get("compute_ops", 0)) for s in acc]
    in_engines = sum(sizes)
    in_torch = sum(int(s.get("compute_ops", len(s.get("nodes") or []))) for s in torch_segments)
    lines.append("Summary")
    if sizes:
        lines.append(f"  engines: {len(sizes)}; ops per engine: min {min(sizes)}, "
                     f"mean {in_engines / len(sizes):.1f}, max {max(sizes)}")
    else:
        lines.append("  engines: 0")
    lines.append(f"  ops in engines: {in_engines} ({_percent(in_engines, total)} of the graph); "
                 f"ops in PyTorch: {in_torch} ({_percent(in_torch, total)})")

    lines.append("")
    lines.extend(_block_size_section(candidates, min_block, total))
    return "\n".join(lines) + "\n"


def emit_dryrun_report(report: str, dryrun: Union[bool, str, os.PathLike]) -> None:
    """dryrun True: logs the report at INFO on the "kiln" logger and prints it. A path: writes the
    report there (atomically, making parent directories) and logs where. False: nothing."""
    if dryrun is False:
        return
    if dryrun is True:
        logger.info("%s", report)
        print(report, end="" if report.endswith("\n") else "\n", flush=True)
        return
    if not isinstance(dryrun, (str, os.PathLike)) or not os.fspath(dryrun):
        raise TypeError(f"dryrun must be True, False or a file path, found {dryrun!r}")
    path = os.path.abspath(os.fspath(dryrun))
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".",
                                suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(report)
        os.chmod(temp, 0o644)  # mkstemp makes it private; a report is an ordinary file
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    logger.info("kiln dry-run report written to %s", path)
