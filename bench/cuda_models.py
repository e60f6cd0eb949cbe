"""Benchmark of kiln's CUDA backend against PyTorch eager and torch.compile (issue 4).

    python3 bench/cuda_models.py --all                      # every model, each in its own process
    python3 bench/cuda_models.py --model resnet50 [--batches 1,32] [--backends eager,kiln]
                                 [--iters 100] [--warmup 20] [--out-dir bench/results]
    python3 bench/cuda_report.py run1.json run2.json [--out-dir bench/results]  # no GPU, no kiln

Per model and batch, in one process on one GPU, with FP16 weights and inputs:

- ``eager``, ``compile-default``, ``compile-reduce-overhead`` (and ``compile-max-autotune`` when
  asked for): median / p10 / p90 of per-iteration CUDA-event times after the warm-ups, one
  synchronize at the end;
- ``kiln``: torch.export, then kiln.compile into a fresh engine cache (``build_s``: the cold
  compile's wall time); then a second kiln.compile from that cache (``load_s``) and kiln.load of a
  kiln.save'd module (``load_s_saved``). Both of those return modules whose engines load at their
  first call, so the first call after each is timed too (``*_first_call_s``), with kiln's
  in-process table of loaded engines emptied first so that it really loads them.

Accuracy of every backend: max abs error and cosine similarity of the first output against eager
FP32 (a copy of the same model with the same random weights, TF32 off, on the FP16 input cast back
to float32, so that only the arithmetic differs).

Rows go to ``<out-dir>/<date>-cuda-models-<gpu>.json`` (merged with the rows already there: a row
replaces the one of the same model, batch and backend) and a table to the ``.md`` beside it,
rewritten from all the rows after each backend, so that a crash loses only the case it hit.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import gc
import json
import operator
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
import kiln  # noqa: E402
from models import randomize_zero_parameters  # noqa: E402
from cuda_report import (BACKENDS, COMPILE_MODES, MODEL_NAMES, merge_rows,  # noqa: E402
                         read_rows, result_stem, row_key)

DEVICE = "cuda"


DEFAULT_BACKENDS = ["eager", "compile-default", "compile-reduce-overhead", "kiln"]
SEQ_LEN = {"bert_base": 128, "gpt2": 512}
ROW_KEYS = ["model", "batch", "backend", "median_ms", "p10_ms", "p90_ms", "build_s", "load_s",
            "max_abs_err", "cosine", "gpu", "error"]


def log(*parts) -> None:
    print(f"[{time.strftime('%H:%M:%S')}]", *parts, flush=True)


# --- models -----------------------------------------------------------------------------------

class LastHiddenState(torch.nn.Module):
    """A transformers model returning only its last hidden state, so that every backend runs and
    returns the same single tensor (no ModelOutput, no cache)."""

    def __init__(self, model: torch.nn.Module, **call_kwargs):
        super().__init__()
        self.model = model
        self.call_kwargs = call_kwargs

    def forward(self, input_ids):
        return self.model(input_ids=input_ids, **self.call_kwargs).last_hidden_state


def build_model(name: str, attn: str) -> torch.nn.Module:
    """The model in FP32 with random weights from seed 0 (the same weights for every call)."""
    torch.manual_seed(0)
    if name in ("resnet50", "vit_b_16"):
        import torchvision
        return randomize_zero_parameters(getattr(torchvision.models, name)())
    import transformers
    if name == "bert_base":
        return LastHiddenState(transformers.BertModel(
            transformers.BertConfig(attn_implementation=attn)))
    if name == "gpt2":
        return LastHiddenState(transformers.GPT2Model(
            transformers.GPT2Config(use_cache=False, attn_implementation=attn)), use_cache=False)
    raise ValueError(f"unknown model '{name}': expected one of {MODEL_NAMES}")


def make_input(name: str, model: torch.nn.Module, batch: int) -> torch.Tensor:
    """The FP16 (images) or int64 (token ids) input for ``batch``, from a fixed seed."""
    generator = torch.Generator().manual_seed(1000 + batch)
    if name in SEQ_LEN:
        vocab = model.model.config.vocab_size
        ids = torch.randint(0, vocab, (batch, SEQ_LEN[name]), generator=generator)
        return ids.to(DEVICE)
    return torch.randn(batch, 3, 224, 224, generator=generator).to(DEVICE).half()


def export(model: torch.nn.Module, x: torch.Tensor):
    return torch.export.export(model, (x,), strict=False)


def choose_attention(name: str, batch: int) -> tuple[str, str | None]:
    """transformers' attention implementation: "sdpa" where torch.export takes it, else "eager"
    (the reason kept for the rows). Every backend then runs the same implementation."""
    if name not in SEQ_LEN:
        return "", None
    model = build_model(name, "sdpa").half().to(DEVICE).eval().requires_grad_(False)
    try:
        export(model, make_input(name, model, batch))
        return "sdpa", None
    except Exception as error:  # noqa: BLE001 - any export failure means: use eager attention
        reason = f"{type(error).__name__}: {error}"[:500]
        log(f"{name}: torch.export failed with sdpa attention, using eager attention ({reason})")
        return "eager", reason
    finally:
        del model
        free_memory()


def free_memory() -> None:
    gc.collect()
    torch.cuda.empty_cache()


# --- measuring ----------------------------------------------------------------------------------

def first_tensor(output) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    leaves = [t for t in torch.utils._pytree.tree_leaves(output) if isinstance(t, torch.Tensor)]
    if not leaves:
        raise TypeError(f"the model returned no tensor ({type(output).__name__})")
    return leaves[0]


@contextlib.contextmanager
def tf32_off():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def accuracy(output, reference: torch.Tensor) -> dict:
    actual = first_tensor(output).detach().float()
    if actual.shape != reference.shape:
        raise RuntimeError(f"output shape {tuple(actual.shape)} differs from eager fp32's "
                           f"{tuple(reference.shape)}")
    a, r = actual.double().flatten(), reference.double().flatten()
    cosine = torch.nn.functional.cosine_similarity(a, r, dim=0).item()
    return {"max_abs_err": (a - r).abs().max().item(), "cosine": cosine}


def percentile(sorted_values: list, q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    position = (len(sorted_values) - 1) * q / 100.0
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def time_gpu(fn, x, iters: int, warmup: int) -> dict:
    """Per-iteration CUDA-event times on the current stream; one synchronize at the end. Where the
    GPU waits for the CPU to launch work, the gap is part of the time, as it is for a user."""
    for _ in range(warmup):
        fn(x)
    torch.cuda.synchronize()
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    wall_started = time.perf_counter()
    for start, end in zip(starts, ends):
        start.record()
        fn(x)
        end.record()
    torch.cuda.synchronize()
    wall_ms = (time.perf_counter() - wall_started) * 1e3 / iters
    times = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    # wall_ms cross-checks the events: work on a stream other than the current one escapes the
    # events but not the wall clock.
    return {"median_ms": round(statistics.median(times), 4),
            "p10_ms": round(percentile(times, 10), 4), "p90_ms": round(percentile(times, 90), 4),
            "wall_mean_ms": round(wall_ms, 4), "iters": iters, "warmup": warmup}


def error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    return text if len(text) <= 2000 else text[:2000] + " ..."


# --- backends -------------------------------------------------------------------------------------

def run_eager(model, x, reference, args) -> dict:
    row = time_gpu(model, x, args.iters, args.warmup)
    row.update(accuracy(model(x), reference))
    return row


def run_torch_compile(model, x, reference, args, mode) -> dict:
    torch._dynamo.reset()  # nothing carries over from another mode or batch (no dynamic shapes)
    compiled = torch.compile(model, mode=mode) if mode else torch.compile(model)
    started = time.perf_counter()
    compiled(x)
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - started
    row = time_gpu(compiled, x, args.iters, args.warmup)
    # reduce-overhead's outputs live in a CUDA graph's pool: accuracy() copies before the next run.
    row.update(accuracy(compiled(x), reference))
    row["compile_s"] = round(compile_s, 3)
    del compiled
    torch._dynamo.reset()
    return row


def segment_counts(module: torch.nn.Module) -> dict:
    """Engines, PyTorch segments (with the ops they run) of a kiln.compile result. An accelerated
    segment whose build failed stays an FX module and runs in PyTorch: it counts as PyTorch."""
    engines, torch_segments, torch_ops = 0, 0, {}
    for name, child in module.named_children():
        if isinstance(child, kiln.KilnEngineModule):
            engines += 1
        elif name.startswith(("_run_on_gpu_", "_run_on_acc_")):
            torch_segments += 1
            for node in child.graph.nodes:
                if node.op == "call_function" and node.target is not operator.getitem:
                    op = str(node.target)
                    torch_ops[op] = torch_ops.get(op, 0) + 1
    if engines == 0 and torch_segments == 0:
        torch_segments = 1  # kiln returned the program unchanged: all of it runs in PyTorch
    return {"engines": engines, "torch_segments": torch_segments,
            "torch_ops": dict(sorted(torch_ops.items(), key=lambda kv: -kv[1]))}


def forget_loaded_engines() -> None:
    """kiln keeps the engines it has loaded in this process, by digest, and a module restored from
    the cache or from a file finds them there. Emptying that table makes the first call after a
    load pay for loading the engines, as it would in a fresh process."""
    from kiln import _engine_module
    with _engine_module._LOADED_LOCK:
        _engine_module._LOADED.clear()


def timed_first_call(module, x) -> tuple[float, object]:
    torch.cuda.synchronize()
    started = time.perf_counter()
    output = module(x)
    torch.cuda.synchronize()
    return time.perf_counter() - started, output


# A new Python process: import torch and kiln, start CUDA and export, save and load a one-op
# program (torch.export's first use in a process imports its machinery, seconds that no program's
# size changes; timed apart as the warm-up), then kiln.load the saved program and run it once.
# Nothing of the benchmark process is shared (loaded engines, cuDNN's and cuBLAS's in-process
# caches); the timing cache file is, as a deployment keeps it. With "libraries-warm", the process
# first runs a few tiny eager ops on cuBLAS, cuBLASLt and cuDNN (as any process that has served a
# request has), so that their one-time start-up, which eager pays too, is timed apart.
_FRESH_LOAD = r"""
import io, json, sys, time
import torch
import kiln
torch.zeros(1, device="cuda")
torch.cuda.synchronize()
x = torch.load(sys.argv[2]).cuda()
started = time.perf_counter()
tiny = io.BytesIO()
torch.export.save(torch.export.export(torch.nn.ReLU(), (torch.zeros(1),)), tiny)
tiny.seek(0)
torch.export.load(tiny)
warmup_s = time.perf_counter() - started
libraries_s = 0.0
if sys.argv[3] == "libraries-warm":
    started = time.perf_counter()
    a = torch.randn(64, 64, device="cuda", dtype=torch.half)
    torch.mm(a, a)
    torch.nn.functional.linear(a, a, a[0])
    torch.nn.functional.conv2d(a.view(1, 1, 64, 64), a[:8, :9].reshape(8, 1, 3, 3))
    q = a.view(1, 1, 64, 64)
    torch.nn.functional.scaled_dot_product_attention(q, q, q)
    torch.cuda.synchronize()
    libraries_s = time.perf_counter() - started
started = time.perf_counter()
module = kiln.load(sys.argv[1]).module()
load_s = time.perf_counter() - started
with torch.inference_mode():
    torch.cuda.synchronize()
    started = time.perf_counter()
    module(x)
    torch.cuda.synchronize()
print(json.dumps({"load_s": load_s, "first_call_s": time.perf_counter() - started,
                  "export_loader_warmup_s": warmup_s, "libraries_warmup_s": libraries_s}))
"""

# Eager PyTorch's first call in a new process (the model built and moved to the GPU before the
# clock starts): what CUDA's lazy loading and the libraries' first use cost any framework there.
_FRESH_EAGER = r"""
import json, sys, time
import torch
sys.path.insert(0, sys.argv[1])
import cuda_models
torch.zeros(1, device="cuda"); torch.cuda.synchronize()
name, batch, attn = sys.argv[2], int(sys.argv[3]), sys.argv[4]
model = cuda_models.build_model(name, attn).half().to("cuda").eval()
x = torch.load(sys.argv[5]).cuda()
with torch.inference_mode():
    torch.cuda.synchronize(); started = time.perf_counter(); model(x); torch.cuda.synchronize()
print(json.dumps({"first_call_s": time.perf_counter() - started}))
"""


def _child(code: str, args: list, env=None) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fresh_process_load(path: str, x, timing_cache: str, name: str, batch: int) -> dict:
    """kiln.load of a saved program and its first call, timed in new processes: cold, and with
    the CUDA libraries started; and eager's first call in a new process, for comparison."""
    inputs = os.path.join(os.path.dirname(path), "input.pt")
    torch.save(x.cpu() if x.device.type == "cuda" else x, inputs)
    env = dict(os.environ, KILN_TIMING_CACHE=timing_cache)
    cold = _child(_FRESH_LOAD, [path, inputs, "cold"], env)
    warm = _child(_FRESH_LOAD, [path, inputs, "libraries-warm"], env)
    log(f"  kiln: fresh process: torch.export warm-up {cold['export_loader_warmup_s']:.3f} s, "
        f"then kiln.load {cold['load_s']:.3f} s, first call {cold['first_call_s']:.3f} s; "
        f"after the libraries' start-up ({warm['libraries_warmup_s']:.3f} s): kiln.load "
        f"{warm['load_s']:.3f} s, first call {warm['first_call_s']:.3f} s")
    row = {"load_fresh_s": round(cold["load_s"], 3),
           "load_fresh_first_call_s": round(cold["first_call_s"], 3),
           "export_loader_warmup_s": round(cold["export_loader_warmup_s"], 3),
           "load_fresh_warm_s": round(warm["load_s"], 3),
           "load_fresh_warm_first_call_s": round(warm["first_call_s"], 3),
           "libraries_warmup_s": round(warm["libraries_warmup_s"], 3)}
    try:
        attn, _ = choose_attention(name, batch)
        eager = _child(_FRESH_EAGER, [os.path.dirname(os.path.abspath(__file__)), name,
                                      str(batch), attn, inputs])
        row["eager_fresh_first_call_s"] = round(eager["first_call_s"], 3)
        log(f"  eager: first call in a new process {eager['first_call_s']:.3f} s")
    except Exception as error:  # noqa: BLE001 - a missing comparison, not a failed case
        log(f"  eager: new-process first call failed: {error_text(error)}")
    return row


def run_kiln(model, x, reference, args) -> dict:
    row: dict = {}
    cache_dir = tempfile.mkdtemp(prefix="kiln-bench-cache-")
    # A fresh timing cache too: the first call times GEMM and convolution algorithms.
    settings = dict(device=DEVICE, enabled_precisions={torch.half}, min_block_size=1,
                    cache_built_engines=True, reuse_cached_engines=True,
                    engine_cache_dir=cache_dir,
                    timing_cache_path=os.path.join(cache_dir, "timing_cache.txt"))
    try:
        started = time.perf_counter()
        ep = export(model, x)
        row["export_s"] = round(time.perf_counter() - started, 3)

        torch.cuda.synchronize()
        started = time.perf_counter()
        module = kiln.compile(ep, inputs=[x], **settings)
        torch.cuda.synchronize()
        row["build_s"] = round(time.perf_counter() - started, 3)
        stats = getattr(module, "_kiln_stats", {})
        row["build_phases_s"] = {k: round(v, 3) for k, v in stats.items() if isinstance(v, float)}
        row.update(segment_counts(module))
        log(f"  kiln: built in {row['build_s']} s: {row['engines']} engine(s), "
            f"{row['torch_segments']} PyTorch segment(s) {row['torch_ops'] or ''}")

        with torch.inference_mode():
            # Loads the engines, binds them to x's shapes and times their algorithms.
            row["first_call_s"] = round(timed_first_call(module, x)[0], 3)
            row.update(time_gpu(module, x, args.iters, args.warmup))
            compiled_out = first_tensor(module(x)).float().clone()
            row.update(accuracy(compiled_out, reference))
        row.update(measure_loads(module, ep, x, settings, compiled_out, cache_dir, args.model))
        del module, ep
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
        free_memory()
    return row


def measure_loads(module, ep, x, settings, compiled_out, cache_dir, name: str) -> dict:
    """The cached compile and kiln.save / kiln.load; their failures are recorded, not raised, so
    that the timing of the compiled module is kept."""
    row: dict = {"load_s": None, "load_s_saved": None}
    problems = []
    try:
        forget_loaded_engines()
        torch.cuda.synchronize()
        started = time.perf_counter()
        cached = kiln.compile(ep, inputs=[x], **settings)
        row["load_s"] = round(time.perf_counter() - started, 3)
        with torch.inference_mode():
            first_s, out = timed_first_call(cached, x)
        row["load_first_call_s"] = round(first_s, 3)
        row["load_matches_built"] = bool(torch.equal(first_tensor(out).float(), compiled_out))
        sources = {e.get("source") for e in getattr(cached, "_kiln_stats", {})
                   .get("engines", {}).values()}
        row["load_source"] = ("program cache" if "program_cache_s" in
                              getattr(cached, "_kiln_stats", {}) else
                              "engine cache" if sources == {"cache"} else
                              f"rebuilt ({sorted(s for s in sources if s)})")
        del cached, out
    except Exception as error:  # noqa: BLE001 - recorded in the row
        problems.append(f"cached compile: {error_text(error)}")
        traceback.print_exc()
    try:
        path = os.path.join(cache_dir, "saved.pt2")
        started = time.perf_counter()
        kiln.save(module, path, inputs=[x])
        row["save_s"] = round(time.perf_counter() - started, 3)
        forget_loaded_engines()
        torch.cuda.synchronize()
        started = time.perf_counter()
        loaded = kiln.load(path).module()
        row["load_s_saved"] = round(time.perf_counter() - started, 3)
        with torch.inference_mode():
            first_s, out = timed_first_call(loaded, x)
        row["load_saved_first_call_s"] = round(first_s, 3)
        row["load_saved_matches_built"] = bool(torch.equal(first_tensor(out).float(),
                                                           compiled_out))
        del loaded, out
    except Exception as error:  # noqa: BLE001 - recorded in the row
        problems.append(f"save/load: {error_text(error)}")
        traceback.print_exc()
    try:
        row.update(fresh_process_load(os.path.join(cache_dir, "saved.pt2"), x,
                                      settings["timing_cache_path"], name, x.shape[0]))
    except Exception as error:  # noqa: BLE001 - recorded in the row
        problems.append(f"fresh-process load: {error_text(error)}")
        traceback.print_exc()
    if problems:
        row["load_error"] = "; ".join(problems)
    return row


# --- results ------------------------------------------------------------------------------------

def base_row(model: str, batch: int, backend: str, gpu: str, run_id: str) -> dict:
    row = {key: None for key in ROW_KEYS}
    row.update(model=model, batch=batch, backend=backend, gpu=gpu, run_id=run_id,
               engines=None, torch_segments=None, torch=torch.__version__,
               kiln=kiln.__version__)
    return row


def run_model(args, stem: str, gpu: str) -> int:
    name = args.model
    failures = 0
    attn, attn_note = choose_attention(name, args.batches[0]) if "kiln" in args.backends else \
        ("sdpa" if name in SEQ_LEN else "", None)
    reference_model = build_model(name, attn).eval().requires_grad_(False)
    model = copy.deepcopy(reference_model).half().to(DEVICE)
    inputs = {batch: make_input(name, model, batch) for batch in args.batches}
    # Eager FP32 on the FP16 inputs cast back: only the arithmetic differs from the FP16 runs.
    reference_model.to(DEVICE)
    references = {}
    with torch.inference_mode(), tf32_off():
        for batch, x in inputs.items():
            x32 = x.float() if x.is_floating_point() else x
            references[batch] = first_tensor(reference_model(x32)).float().clone()
    del reference_model
    free_memory()
    for batch in args.batches:
        x, reference = inputs[batch], references[batch]
        log(f"{name} batch {batch}: eager fp32 max|y| = {reference.abs().max().item():.3g}")
        for backend in args.backends:
            row = base_row(name, batch, backend, gpu, args.run_id)
            if attn:
                row["attn_implementation"] = attn
                if attn_note:
                    row["attn_note"] = attn_note
            log(f"{name} batch {batch}: {backend} ...")
            started = time.perf_counter()
            try:
                if backend == "eager":
                    with torch.inference_mode():
                        row.update(run_eager(model, x, reference, args))
                elif backend in COMPILE_MODES:
                    with torch.inference_mode():
                        row.update(run_torch_compile(model, x, reference, args,
                                                     COMPILE_MODES[backend]))
                else:
                    row.update(run_kiln(model, x, reference, args))
            except Exception as error:  # noqa: BLE001 - one backend's failure is one row's error
                failures += 1
                row["error"] = error_text(error)
                traceback.print_exc()
            free_memory()
            row["elapsed_s"] = round(time.perf_counter() - started, 1)
            log(f"{name} batch {batch}: {backend}: "
                + (f"error: {row['error'][:300]}" if row["error"] else
                   f"median {row['median_ms']} ms (p10 {row['p10_ms']}, p90 {row['p90_ms']}), "
                   f"max abs err {row['max_abs_err']:.3g}, cosine {row['cosine']:.6f}"
                   + (f", build {row['build_s']} s, load {row['load_s']} s, "
                      f"saved load {row['load_s_saved']} s" if backend == "kiln" else "")))
            merge_rows(stem, [row])
    return failures


# --- every model, one process each ---------------------------------------------------------------

def run_all(args, stem: str, gpu: str) -> int:
    failed = []
    for name in args.models:
        command = [sys.executable, os.path.abspath(__file__), "--model", name,
                   "--batches", ",".join(map(str, args.batches)),
                   "--backends", ",".join(args.backends), "--iters", str(args.iters),
                   "--warmup", str(args.warmup), "--out-dir", args.out_dir, "--date", args.date,
                   "--run-id", args.run_id]
        log(f"== {name}: {' '.join(command)}")
        try:
            code = subprocess.run(command, timeout=args.timeout).returncode
            reason = f"exited with code {code}"
        except subprocess.TimeoutExpired:
            code, reason = -1, f"ran past --timeout {args.timeout} s and was killed"
        if code != 0:
            failed.append(name)
        # Cases the process did not get to (it died): rows that say so, not silence.
        done = {row_key(r) for r in read_rows(stem + ".json") if r.get("run_id") == args.run_id}
        missing = []
        for batch in args.batches:
            for backend in args.backends:
                if (name, batch, backend) not in done:
                    row = base_row(name, batch, backend, gpu, args.run_id)
                    row["error"] = (f"no result: the benchmark process for {name} {reason} "
                                    "before this case finished (see its output)")
                    missing.append(row)
        if missing:
            merge_rows(stem, missing)
    log(f"results: {stem}.json, {stem}.md" + (f"; processes that failed: {failed}" if failed
                                               else ""))
    print(open(stem + ".md").read(), flush=True)
    return 1 if failed else 0


def gpu_name_in_subprocess() -> str:
    """The GPU's name, asked in a child process so that this one, which only starts the others,
    holds no CUDA context (and no GPU memory) while they run."""
    result = subprocess.run([sys.executable, "-c",
                             "import torch; print(torch.cuda.get_device_name())"],
                            capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", choices=MODEL_NAMES)
    which.add_argument("--all", action="store_true",
                       help="every model (or --models), each in its own process, one after another")
    parser.add_argument("--models", default=",".join(MODEL_NAMES),
                        help="with --all: the models, comma separated")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--backends", default=",".join(DEFAULT_BACKENDS),
                        help=f"comma separated, from {BACKENDS}")
    parser.add_argument("--iters", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "results"))
    parser.add_argument("--timeout", type=int, default=3600,
                        help="with --all: seconds one model's process may take")
    parser.add_argument("--date", default=str(datetime.date.today()),
                        help="the date in the result file's name (--all passes its own on)")
    parser.add_argument("--run-id", default=time.strftime("%Y%m%dT%H%M%S"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.batches = [int(b) for b in args.batches.split(",") if b.strip()]
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    for value, known, what in ((args.backends, BACKENDS, "--backends"),
                               (args.models, MODEL_NAMES, "--models")):
        unknown = [v for v in value if v not in known]
        if unknown:
            parser.error(f"{what}: unknown {unknown}; expected names from {known}")
    if not args.batches or min(args.batches) < 1:
        parser.error(f"--batches: expected positive batch sizes, found {args.batches}")
    if args.iters < 1 or args.warmup < 0:
        parser.error("--iters must be >= 1 and --warmup >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not torch.cuda.is_available():
        print("bench/cuda_models.py needs a CUDA GPU; torch.cuda.is_available() is False",
              file=sys.stderr)
        return 2
    gpu = gpu_name_in_subprocess() if args.all else torch.cuda.get_device_name()
    stem = result_stem(args.out_dir, args.date, gpu)
    log(f"{gpu}; torch {torch.__version__}; kiln {kiln.__version__}; rows to {stem}.json")
    if args.all:
        return run_all(args, stem, gpu)
    failures = run_model(args, stem, gpu)
    log(f"{args.model}: done ({failures} backend failure(s)); {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
