"""Where a kiln CUDA engine spends its time: per-step GPU times of the benchmark's models.

    python bench/profile_steps.py gpt2:32 vit_b_16:32 [--runs 10]

Builds each model as bench/cuda_models.py does (FP16, random weights), then runs the compiled
module with KILN_CUDA_PROFILE set: the CUDA runtime launches each step alone between CUDA events
(no CUDA graph, so the sum is above the benchmark's time) and prints, per engine, the time by step
kind and the slowest steps to stderr. Also prints the first call's time (engine load, binding and
algorithm timing), and then the same for a kiln.save'd copy loaded back (kiln.load, then the
first call with where loading and binding spent their time). A development tool, not a benchmark: nothing is written to bench/results.
"""
import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cuda_models  # noqa: E402 - the benchmark's models, inputs and export

import kiln  # noqa: E402


def profile(name: str, batch: int, runs: int) -> None:
    attn = "sdpa" if name in cuda_models.SEQ_LEN else ""
    model = cuda_models.build_model(name, attn).eval().requires_grad_(False).half().to("cuda")
    x = cuda_models.make_input(name, model, batch)
    ep = cuda_models.export(model, x)
    started = time.perf_counter()
    module = kiln.compile(ep, inputs=[x], device="cuda", enabled_precisions={torch.half},
                          min_block_size=1, cache_built_engines=False, reuse_cached_engines=False)
    print(f"{name} batch {batch}: built in {time.perf_counter() - started:.2f} s", flush=True)
    with torch.inference_mode():
        torch.cuda.synchronize()
        started = time.perf_counter()
        module(x)
        torch.cuda.synchronize()
        print(f"{name} batch {batch}: first call {time.perf_counter() - started:.3f} s", flush=True)
        for _ in range(runs - 1):
            module(x)
        torch.cuda.synchronize()
    sys.stderr.flush()
    # The cached path: save, forget the loaded engines, load and call again; the engine's report
    # (printed after `runs` calls) then shows where loading and binding spent their time.
    with tempfile.TemporaryDirectory(prefix="kiln-profile-") as tmp:
        path = os.path.join(tmp, "saved.pt2")
        kiln.save(module, path, inputs=[x])
        del module
        cuda_models.forget_loaded_engines()
        started = time.perf_counter()
        loaded = kiln.load(path).module()
        load_s = time.perf_counter() - started
        with torch.inference_mode():
            first_s = cuda_models.timed_first_call(loaded, x)[0]
            print(f"{name} batch {batch}: kiln.load {load_s:.3f} s, then first call "
                  f"{first_s:.3f} s", flush=True)
            for _ in range(runs - 1):
                loaded(x)
            torch.cuda.synchronize()
    sys.stderr.flush()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", help="model:batch, e.g. gpt2:32")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    os.environ["KILN_CUDA_PROFILE"] = str(args.runs)  # read when an engine loads
    for case in args.cases:
        name, _, batch = case.partition(":")
        profile(name, int(batch or 1), args.runs)
        cuda_models.free_memory()
    return 0


if __name__ == "__main__":
    sys.exit(main())
