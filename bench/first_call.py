"""Where a new process's first call of a saved kiln program spends its time.

    python3 bench/first_call.py resnet50:32 vit_b_16:1 [--processes 2]

For each model:batch: export and kiln.compile (FP16) with a fresh engine and timing cache, run it
once (which times tactics and keeps cuDNN's plans beside the timing cache) and kiln.save it; then
start new processes that kiln.load the file and call it once, with KILN_CUDA_PROFILE=1 so that the
CUDA runtime reports its load phases and the host time each kind of step took to bind (cuBLASLt
and cuDNN plans: built, or restored from the cache). Each child prints its own phases: CUDA and
torch start-up, torch.export's first load, kiln.load, the first call. A diagnostic, not a
benchmark: bench/cuda_models.py measures the same load for the results table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cuda_models  # noqa: E402  (the benchmark's models and inputs)

_CHILD = r"""
import io, json, sys, time
t0 = time.perf_counter()
import torch
torch.zeros(1, device="cuda"); torch.cuda.synchronize()
t1 = time.perf_counter()
import kiln
t2 = time.perf_counter()
tiny = io.BytesIO()
torch.export.save(torch.export.export(torch.nn.ReLU(), (torch.zeros(1),)), tiny)
tiny.seek(0); torch.export.load(tiny)
t3 = time.perf_counter()
x = torch.load(sys.argv[2]).cuda()
profiler = None
if len(sys.argv) > 3 and sys.argv[3] == "cprofile":
    import cProfile, pstats
    profiler = cProfile.Profile()
    profiler.enable()
module = kiln.load(sys.argv[1]).module()
t4 = time.perf_counter()
with torch.inference_mode():
    torch.cuda.synchronize(); s = time.perf_counter(); module(x); torch.cuda.synchronize()
    first = time.perf_counter() - s
    if profiler is not None:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
    s = time.perf_counter(); module(x); torch.cuda.synchronize()
    second = time.perf_counter() - s
print(json.dumps({"torch_cuda_init_s": t1 - t0, "import_kiln_s": t2 - t1,
                  "export_warmup_s": t3 - t2, "kiln_load_s": t4 - t3,
                  "first_call_s": first, "second_call_s": second}))
"""


# Eager PyTorch's first call in a new process, for comparison: what CUDA's lazy loading and the
# libraries' first use cost any framework (the model is built and moved before the clock starts).
_EAGER_CHILD = r"""
import json, os, sys, time
import torch
sys.path.insert(0, sys.argv[1])
import cuda_models
torch.zeros(1, device="cuda"); torch.cuda.synchronize()
name, batch = sys.argv[2], int(sys.argv[3])
attn, _ = cuda_models.choose_attention(name, batch)
model = cuda_models.build_model(name, attn).half().to("cuda").eval()
x = torch.load(sys.argv[4]).cuda()
with torch.inference_mode():
    torch.cuda.synchronize(); s = time.perf_counter(); model(x); torch.cuda.synchronize()
    first = time.perf_counter() - s
    s = time.perf_counter(); model(x); torch.cuda.synchronize()
    second = time.perf_counter() - s
print(json.dumps({"eager_first_call_s": first, "eager_second_call_s": second}))
"""


def run_case(name: str, batch: int, processes: int, cprofile: bool = False) -> None:
    import kiln

    attn, _ = cuda_models.choose_attention(name, batch)
    model = cuda_models.build_model(name, attn).half().to(cuda_models.DEVICE).eval()
    model.requires_grad_(False)
    x = cuda_models.make_input(name, model, batch)
    work = tempfile.mkdtemp(prefix="kiln-first-call-")
    timing_cache = os.path.join(work, "timing_cache.txt")
    compiled = kiln.compile(cuda_models.export(model, x), inputs=[x], device="cuda",
                            enabled_precisions={torch.half}, min_block_size=1,
                            engine_cache_dir=os.path.join(work, "engines"),
                            timing_cache_path=timing_cache)
    with torch.inference_mode():
        compiled(x)
    path = os.path.join(work, "saved.pt2")
    kiln.save(compiled, path, inputs=[x])
    inputs = os.path.join(work, "input.pt")
    torch.save(x.cpu(), inputs)
    plans = os.path.join(timing_cache + ".plans")
    kept = len(os.listdir(plans)) if os.path.isdir(plans) else 0
    print(f"== {name} batch {batch}: {kept} cuDNN plan(s) kept in {plans}", flush=True)
    env = dict(os.environ, KILN_TIMING_CACHE=timing_cache, KILN_CUDA_PROFILE="1")
    for i in range(processes):
        profile = ["cprofile"] if cprofile and i == processes - 1 else []
        done = subprocess.run([sys.executable, "-c", _CHILD, path, inputs, *profile], env=env,
                              capture_output=True, text=True, timeout=600)
        lines = [line for line in done.stderr.splitlines()
                 if line.startswith(("kiln CUDA", "  ")) and "Warning" not in line]
        print(f"-- process {i + 1} (exit {done.returncode}){' with cProfile' if profile else ''}")
        print("\n".join(lines[:60]))
        if profile:
            start = next((k for k, line in enumerate(done.stderr.splitlines())
                          if "function calls" in line), None)
            if start is not None:
                print("\n".join(done.stderr.splitlines()[start:start + 60]))
        if done.returncode != 0:
            print(done.stderr[-3000:])
            continue
        times = json.loads(done.stdout.strip().splitlines()[-1])
        print("   " + ", ".join(f"{k} {v:.3f}" for k, v in times.items()), flush=True)
    done = subprocess.run([sys.executable, "-c", _EAGER_CHILD, os.path.dirname(
        os.path.abspath(__file__)), name, str(batch), inputs], capture_output=True, text=True,
        timeout=600)
    if done.returncode == 0:
        times = json.loads(done.stdout.strip().splitlines()[-1])
        print("-- eager in a new process: " + ", ".join(f"{k} {v:.3f}" for k, v in times.items()))
    else:
        print(f"-- eager in a new process failed (exit {done.returncode}): {done.stderr[-1500:]}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="+", help="model:batch, e.g. resnet50:32")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--cprofile", action="store_true",
                        help="the last process also prints cProfile's cumulative table of "
                             "kiln.load and the first call")
    args = parser.parse_args(argv)
    for case in args.cases:
        name, _, batch = case.partition(":")
        run_case(name, int(batch or 1), args.processes, args.cprofile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
