#!/usr/bin/env python3
"""The op conformance sweep as a command: Core ATen (+ kiln's kept-whole ops) x dtypes, one backend.

    python3 scripts/op_coverage.py --device cpu                      # the CI budget, every dtype
    python3 scripts/op_coverage.py --device cpu --full --write-report # every sample (slow)
    python3 scripts/op_coverage.py --device cuda --write-report       # on the GPU machine
    python3 scripts/op_coverage.py --ops aten.amax.default,aten.sort.default --dtypes float32
    python3 scripts/op_coverage.py --device cpu --update-baseline     # after a deliberate change

Writes tests/conformance/results_<device>.json (merged into the existing file, so a partial run
updates only what it ran, and results of the other device are left alone); --write-report
renders docs/op-coverage.md from every results file present (both backends side by side);
--update-baseline rewrites the committed baseline CI checks against (reference backend:
tests/conformance/baseline_reference.json). Prints the regressions against that baseline and
exits 1 if there are any.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))

from conformance import ops, report, samples, sweep  # noqa: E402


def _parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (the reference backend) or cuda")
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument("--budget", type=int, default=sweep.CI_BUDGET,
                        help=f"samples per (op, dtype), edge cases first (default "
                             f"{sweep.CI_BUDGET}, as in CI)")
    amount.add_argument("--full", action="store_true",
                        help="every distinct sample of every OpInfo (the full sweep)")
    parser.add_argument("--samples-per-opinfo", type=int, default=None,
                        help=f"read the first N samples of each OpInfo (default "
                             f"{sweep.CI_SAMPLES_PER_OPINFO}; all with --full)")
    parser.add_argument("--dtypes", default=",".join(samples.DTYPES),
                        help="comma-separated, from " + ", ".join(samples.DTYPES))
    parser.add_argument("--ops", default="",
                        help="comma-separated overloads (aten.add.Tensor) or substrings of them")
    parser.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    parser.add_argument("--write-report", action="store_true", help="write docs/op-coverage.md")
    parser.add_argument("--update-baseline", action="store_true",
                        help="write this run's statuses as the committed baseline")
    parser.add_argument("--results", default=None,
                        help="results file (default tests/conformance/results_<device>.json)")
    return parser.parse_args(argv)


def _selected_ops(spec: str) -> list[str]:
    names = ops.op_names()
    if not spec:
        return names
    wanted = [s.strip() for s in spec.split(",") if s.strip()]
    chosen = [n for n in names if any(w == n or w in n for w in wanted)]
    if not chosen:
        raise SystemExit(f"--ops {spec!r} matches none of the {len(names)} ops under test")
    return chosen


def main(argv=None) -> int:
    args = _parse_args(argv)
    dtypes = tuple(d.strip() for d in args.dtypes.split(",") if d.strip())
    unknown = [d for d in dtypes if d not in samples.DTYPES]
    if unknown:
        raise SystemExit(f"--dtypes: unknown {unknown}; expected some of {list(samples.DTYPES)}")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: torch.cuda.is_available() is False here")
    per_opinfo = args.samples_per_opinfo
    if per_opinfo is None:
        per_opinfo = None if args.full else sweep.CI_SAMPLES_PER_OPINFO
    config = sweep.SweepConfig(device=args.device, dtypes=dtypes,
                               ops=tuple(_selected_ops(args.ops)),
                               budget=None if args.full else args.budget,
                               samples_per_opinfo=per_opinfo, workers=args.workers)
    print(f"kiln conformance: {len(config.ops)} ops x {len(dtypes)} dtypes on {args.device}, "
          f"budget {'all' if config.budget is None else config.budget}, "
          f"{'all' if per_opinfo is None else per_opinfo} samples per OpInfo, "
          f"{config.workers} workers", flush=True)
    try:
        results = sweep.run_sweep(config, progress=lambda m: print(m, flush=True))
    except sweep.SamplesUnavailable as error:
        raise SystemExit(f"no samples: {error}")
    path = args.results or report.results_path(args.device)
    results = report.merge_results(report.load_json(path), results)
    report.write_json(path, results)
    print(f"wrote {os.path.relpath(path)}")
    print("\n".join(report.SUMMARY_HEADER + report.summary_rows(results)))

    baseline_path = report.BASELINE_PATHS[report.device_key(args.device)]
    if args.update_baseline:
        if config.budget != sweep.CI_BUDGET or per_opinfo != sweep.CI_SAMPLES_PER_OPINFO:
            print("note: the baseline is written from a run outside CI's configuration "
                  f"(budget {sweep.CI_BUDGET}, {sweep.CI_SAMPLES_PER_OPINFO} samples per OpInfo)")
        report.write_json(baseline_path, report.baseline_of(results))
        print(f"wrote {os.path.relpath(baseline_path)}")
    if args.write_report:
        # This run's results (from --results when given) and the other backend's, if kept.
        paths = {device: report.results_path(device) for device in ("cpu", "cuda")}
        paths[report.device_key(args.device)] = path
        documents = [d for d in (report.load_json(p) for p in paths.values()) if d]
        with open(report.REPORT_PATH, "w") as f:
            f.write(report.render(documents))
        print(f"wrote {os.path.relpath(report.REPORT_PATH)}")

    baseline = report.load_json(baseline_path)
    regressions = []
    if baseline:
        for op, entry in results["ops"].items():
            for dtype, verdict in entry["dtypes"].items():
                was = baseline["statuses"].get(op, {}).get(dtype)
                if report.is_regression(was, verdict["status"]):
                    regressions.append(f"  {op} {dtype}: {was} -> {verdict['status']}: "
                                       f"{verdict['reason']}")
    if not regressions:
        return 0
    ci_configuration = (config.budget == sweep.CI_BUDGET
                        and per_opinfo == sweep.CI_SAMPLES_PER_OPINFO)
    if not ci_configuration:
        print(f"{len(regressions)} (op, dtype) pairs do worse than "
              f"{os.path.relpath(baseline_path)} says; this run is not CI's configuration (its "
              "samples differ), so these are findings, not regressions:")
        print("\n".join(regressions))
        return 0
    print(f"{len(regressions)} regressions against {os.path.relpath(baseline_path)}:")
    print("\n".join(regressions))
    return 1


if __name__ == "__main__":
    sys.exit(main())
