"""Benchmark of kiln's reference CPU backend (issue: resnet50 at batch 1 in under 2 s on the 2-core
CI machine; a 100 MB archive opens in well under a second).

    python3 bench/cpu_reference.py [--iters N] [--out bench/results]

Measures, in one process: archive open time (resnet50's archive is ~100 MB of fp32 weights), kiln's
run time and PyTorch eager's on the same CPU, and kiln's max error against eager.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
import kiln  # noqa: E402
from models import MODELS  # noqa: E402


def median_ms(fn, iters):
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--models", default="resnet50,mobilenet_v3_small,vit_b_16,bert,gpt2")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()
    machine = f"{cpu_name()}, {os.cpu_count()} cores"
    rows = []
    for name in args.models.split(","):
        torch.manual_seed(0)
        model, inputs = MODELS[name]()
        model.eval()
        ep = torch.export.export(model, inputs).run_decompositions()
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, f"{name}.pt2")
            torch.export.save(ep, path)
            size_mb = os.path.getsize(path) / 1e6
            start = time.perf_counter()
            program = kiln.load(path)
            open_s = time.perf_counter() - start
            program(*inputs)  # warm-up
            kiln_ms = median_ms(lambda: program(*inputs), args.iters)
            with torch.no_grad():
                model(*inputs)
                eager_ms = median_ms(lambda: model(*inputs), args.iters)
                expected = model(*inputs)
            actual = program(*inputs)
            flat_a = [t for t in torch.utils._pytree.tree_leaves(actual) if isinstance(t, torch.Tensor)]
            flat_e = [t for t in torch.utils._pytree.tree_leaves(expected) if isinstance(t, torch.Tensor)]
            err = max(((a.double() - e.double()).abs().max().item() for a, e in zip(flat_a, flat_e)
                       if a.numel()), default=0.0)
        row = {"model": name, "batch": int(inputs[0].shape[0]), "archive_mb": round(size_mb, 1),
               "open_s": round(open_s, 4), "kiln_cpu_ms": round(kiln_ms, 2),
               "eager_cpu_ms": round(eager_ms, 2), "max_abs_err": err, "machine": machine}
        rows.append(row)
        print(json.dumps(row), flush=True)
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.date.today().isoformat()
    base = os.path.join(args.out, f"{stamp}-cpu-reference-{os.cpu_count()}core")
    with open(base + ".json", "w") as f:
        json.dump(rows, f, indent=1)
    with open(base + ".md", "w") as f:
        f.write(f"# kiln reference CPU backend, {stamp}\n\nMachine: {machine}; torch {torch.__version__} "
                f"(eager on the same CPU); median of {args.iters} runs after one warm-up.\n\n")
        f.write("| model | batch | archive MB | open s | kiln ms | eager ms | max abs err |\n")
        f.write("|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['model']} | {r['batch']} | {r['archive_mb']} | {r['open_s']} | "
                    f"{r['kiln_cpu_ms']} | {r['eager_cpu_ms']} | {r['max_abs_err']:.2e} |\n")
    print(f"wrote {base}.json and .md")


if __name__ == "__main__":
    main()
