"""Benchmark of kiln.compile with the engine cache (issue: a cache hit on resnet50 returns in under
0.5 s). The first call of each module is timed too: a program from the cache loads its engines then.

    python3 bench/compile_cache.py [--model resnet50] [--repeats 3] [--out bench/results]

In one process: a cold compile that builds and caches the engine, then compiles of the same program
that find it in the cache. Reports, per compile, the total time and its phases (kiln._compiler's
``_kiln_stats``: lowering with kiln's decompositions, ep.module(), serializing the program, reading
it in C++, partitioning, and the engine step, which on a hit is key + lookup + verification + load),
and checks the cached module against eager.
"""
import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
sys.path.insert(0, os.path.dirname(__file__))
import kiln  # noqa: E402
from cpu_reference import cpu_name  # noqa: E402
from models import MODELS  # noqa: E402


def compile_once(ep, x, cache_dir):
    started = time.perf_counter()
    module = kiln.compile(ep, inputs=[x], cache_built_engines=True, reuse_cached_engines=True,
                          engine_cache_dir=cache_dir)
    total = time.perf_counter() - started
    stats = dict(module._kiln_stats)
    engines = stats.pop("engines", {})
    return module, total, stats, engines


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()

    torch.manual_seed(0)
    model, example = MODELS[args.model]()
    x = example[0] if isinstance(example, tuple) else example
    ep = torch.export.export(model.eval(), (x,))
    rows = []
    with tempfile.TemporaryDirectory() as cache_dir:
        for run in range(1 + args.repeats):
            module, total, stats, engines = compile_once(ep, x, cache_dir)
            engine_s = sum(e["seconds"] for e in engines.values())
            call_started = time.perf_counter()
            with torch.no_grad():
                module(x)  # a program from the cache loads its engines here
            first_call_s = time.perf_counter() - call_started
            sources = sorted({e["source"] for e in engines.values()})
            rows.append({"model": args.model, "run": "cold" if run == 0 else "cache hit",
                         "compile_s": round(total, 3), "engine_step_s": round(engine_s, 3),
                         "first_call_s": round(first_call_s, 3),
                         "sources": sources, "phases_s": {k: round(v, 3) for k, v in stats.items()
                                      if isinstance(v, float)}})
            print(rows[-1], flush=True)
        with torch.no_grad():
            error = (module(x) - model(x)).abs().max().item()
    hits = [r for r in rows if r["run"] == "cache hit"]
    summary = {
        "model": args.model, "cpu": cpu_name(), "cores": os.cpu_count(),
        "cold_compile_s": rows[0]["compile_s"],
        "hit_compile_median_s": statistics.median(r["compile_s"] for r in hits),
        "hit_engine_step_median_s": statistics.median(r["engine_step_s"] for r in hits),
        "max_abs_err_vs_eager": error, "rows": rows,
    }
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"{datetime.date.today()}-compile-cache-{os.cpu_count()}core")
    with open(stem + ".json", "w") as f:
        json.dump(summary, f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write(f"# kiln.compile with the engine cache: {args.model} ({summary['cpu']}, "
                f"{summary['cores']} cores, cpu backend)\n\n")
        f.write("| run | compile() s | engine step s | first call s | phases (s) |\n"
                "|---|---|---|---|---|\n")
        for r in rows:
            phases = ", ".join(f"{k} {v}" for k, v in r["phases_s"].items())
            f.write(f"| {r['run']} | {r['compile_s']} | {r['engine_step_s']} | "
                    f"{r['first_call_s']} | {phases} |\n")
        f.write("\nA hit returns the compiled program from the program-level entry (kiln.save's form, "
                "keyed before lowering); its engine loads at the first call.\n")
        f.write(f"\nmax abs error of the cached module vs eager: {error:.2e}\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "rows"}, indent=2))


if __name__ == "__main__":
    main()
