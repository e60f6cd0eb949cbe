"""The results of bench/cuda_models.py: rows merged into ``<date>-cuda-models-<gpu>.json`` and the
markdown table beside it, with issue 4's targets checked. Needs neither a GPU, torch nor kiln:

    python3 bench/cuda_report.py run1.json run2.json [--out-dir bench/results]

merges the rows of several runs (later ones win) under the first file's name and writes its table.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

MODEL_NAMES = ["resnet50", "vit_b_16", "bert_base", "gpt2"]
BACKENDS = ["eager", "compile-default", "compile-reduce-overhead", "compile-max-autotune", "kiln"]
COMPILE_MODES = {"compile-default": None, "compile-reduce-overhead": "reduce-overhead",
                 "compile-max-autotune": "max-autotune"}
# Issue 4's targets, checked in the summary line of the table.
BUILD_TARGET_S = 30.0
LOAD_TARGET_S = 0.5


def gpu_slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[len("nvidia-"):] if slug.startswith("nvidia-") else slug


def result_stem(out_dir: str, date: str, gpu: str) -> str:
    return os.path.join(out_dir, f"{date}-cuda-models-{gpu_slug(gpu)}")


def read_rows(path: str) -> list:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = json.load(f)
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a JSON list of rows, found {type(rows).__name__}")
    return rows


def row_key(row: dict) -> tuple:
    return row["model"], row["batch"], row["backend"]


def _order(row: dict) -> tuple:
    model = row["model"]
    return (MODEL_NAMES.index(model) if model in MODEL_NAMES else len(MODEL_NAMES), model,
            row["batch"], BACKENDS.index(row["backend"]) if row["backend"] in BACKENDS else 99)


def write_atomically(path: str, text: str) -> None:
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def merge_rows(stem: str, new_rows: list) -> list:
    """Adds ``new_rows`` to the file's rows (replacing those of the same model, batch, backend)
    and rewrites the JSON and the table."""
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    replaced = {row_key(r) for r in new_rows}
    rows = [r for r in read_rows(stem + ".json") if row_key(r) not in replaced] + new_rows
    rows.sort(key=_order)
    write_atomically(stem + ".json", json.dumps(rows, indent=2) + "\n")
    write_atomically(stem + ".md", markdown(rows))
    return rows


def _ms(row) -> str:
    if row is None:
        return "–"
    if row.get("median_ms") is None:
        return "error"
    return f"{row['median_ms']:.3f}"


def _s(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def _count(cases: list, test) -> int:
    return sum(1 for c in cases if test(c))


def markdown(rows: list) -> str:
    gpus = sorted({r.get("gpu") or "?" for r in rows})
    by_case: dict = {}
    for r in rows:
        by_case.setdefault((r["model"], r["batch"]), {})[r["backend"]] = r
    cases = sorted(by_case, key=lambda c: _order({"model": c[0], "batch": c[1], "backend": ""}))
    compile_backends = [b for b in COMPILE_MODES if any(b in by_case[c] for c in cases)]
    iters = sorted({(r["iters"], r["warmup"]) for r in rows if r.get("iters")})
    runs = ", ".join(f"{i} iterations after {w} warm-ups" for i, w in iters) or "no timings"
    versions = sorted({f"torch {r.get('torch')}, kiln {r.get('kiln')}" for r in rows})
    lines = [f"# kiln's CUDA backend vs eager and torch.compile ({', '.join(gpus)}, FP16)", "",
             f"{'; '.join(versions)}; {runs}.", "",
             "Median ms of per-iteration CUDA-event times (p10/p90 in the JSON). kiln vs best "
             "compile: the fastest torch.compile mode's median / kiln's (> 1: kiln is faster). "
             "build s: kiln.compile into an empty engine cache; load s: kiln.compile from that "
             "cache / kiln.load of a kiln.save'd file (engines load at the first call, timed "
             "apart below). max abs err: kiln's output vs eager FP32 (eager FP16's in brackets).",
             ""]
    columns = (["model", "batch", "eager"] + compile_backends +
               ["kiln", "kiln vs best compile", "build s", "load s", "max abs err"])
    lines += ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    summary_cases = []
    for case in cases:
        backends = by_case[case]
        kiln_row, eager_row = backends.get("kiln"), backends.get("eager")
        compiled = [backends[b]["median_ms"] for b in compile_backends
                    if b in backends and backends[b].get("median_ms") is not None]
        best_compile = min(compiled) if compiled else None
        kiln_ms = kiln_row.get("median_ms") if kiln_row else None
        ratio = f"{best_compile / kiln_ms:.2f}x" if best_compile and kiln_ms else "–"
        load = "–"
        if kiln_row and (kiln_row.get("load_s") is not None
                         or kiln_row.get("load_s_saved") is not None):
            load = f"{_s(kiln_row.get('load_s'))} / {_s(kiln_row.get('load_s_saved'))}"
        error = "–"
        if kiln_row and kiln_row.get("max_abs_err") is not None:
            error = f"{kiln_row['max_abs_err']:.2e}"
        if eager_row and eager_row.get("max_abs_err") is not None:
            error += f" [{eager_row['max_abs_err']:.2e}]"
        cells = ([case[0], str(case[1]), _ms(eager_row)] +
                 [_ms(backends.get(b)) for b in compile_backends] +
                 [_ms(kiln_row), ratio, _s(kiln_row.get("build_s") if kiln_row else None), load,
                  error])
        lines.append("| " + " | ".join(cells) + " |")
        summary_cases.append({
            "kiln_ms": kiln_ms, "best_compile": best_compile,
            "eager_ms": eager_row.get("median_ms") if eager_row else None,
            "build_s": kiln_row.get("build_s") if kiln_row else None,
            "load_s": kiln_row.get("load_s") if kiln_row else None,
            "ready_s": (kiln_row["load_s"] + kiln_row["load_first_call_s"])
            if kiln_row and kiln_row.get("load_s") is not None
            and kiln_row.get("load_first_call_s") is not None else None,
            "saved_s": (kiln_row["load_s_saved"] + kiln_row["load_saved_first_call_s"])
            if kiln_row and kiln_row.get("load_s_saved") is not None
            and kiln_row.get("load_saved_first_call_s") is not None else None,
            "fresh_s": (kiln_row["load_fresh_s"] + kiln_row["load_fresh_first_call_s"])
            if kiln_row and kiln_row.get("load_fresh_s") is not None else None,
            "fresh_warm_s": (kiln_row["load_fresh_warm_s"] + kiln_row["load_fresh_warm_first_call_s"])
            if kiln_row and kiln_row.get("load_fresh_warm_s") is not None else None,
            "eager_fresh_s": kiln_row.get("eager_fresh_first_call_s") if kiln_row else None,
            "fresh_first_call_s": kiln_row.get("load_fresh_first_call_s") if kiln_row else None,
            "fresh_warmup": kiln_row.get("export_loader_warmup_s") if kiln_row else None})
    lines += ["", summary(summary_cases), ""]
    lines += kiln_details(cases, by_case)
    errors = [r for r in rows if r.get("error") or r.get("load_error")]
    if errors:
        lines += ["", "## Errors", ""]
        for r in errors:
            text = (r.get("error") or r.get("load_error")).replace("\n", " ")
            lines.append(f"- {r['model']} batch {r['batch']} {r['backend']}: {text[:400]}")
    return "\n".join(lines) + "\n"


def summary(cases: list) -> str:
    n = len(cases)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    faster = _count(cases, lambda c: c["kiln_ms"] and c["eager_ms"]
                    and c["kiln_ms"] < c["eager_ms"])
    ahead = _count(cases, lambda c: c["kiln_ms"] and c["best_compile"]
                   and c["kiln_ms"] <= c["best_compile"])
    built = _count(cases, lambda c: c["build_s"] is not None and c["build_s"] < BUILD_TARGET_S)
    saved = _count(cases, lambda c: c["saved_s"] is not None and c["saved_s"] < LOAD_TARGET_S)
    ready = _count(cases, lambda c: c["ready_s"] is not None and c["ready_s"] < LOAD_TARGET_S)
    fresh = _count(cases, lambda c: c["fresh_s"] is not None and c["fresh_s"] < LOAD_TARGET_S)
    measured_fresh = _count(cases, lambda c: c["fresh_s"] is not None)
    warm = _count(cases, lambda c: c.get("fresh_warm_s") is not None
                  and c["fresh_warm_s"] < LOAD_TARGET_S)
    measured_warm = _count(cases, lambda c: c.get("fresh_warm_s") is not None)
    # kiln's first call in a new process against eager's own there (both pay CUDA's start-up).
    below_eager = _count(cases, lambda c: c.get("fresh_first_call_s") is not None
                         and c.get("eager_fresh_s") is not None
                         and c["fresh_first_call_s"] <= c["eager_fresh_s"])
    measured_eager = _count(cases, lambda c: c.get("eager_fresh_s") is not None)
    warmups = [c["fresh_warmup"] for c in cases if c.get("fresh_warmup") is not None]
    need_ahead = (n + 1) // 2
    ahead_verdict = (verdict(ahead >= need_ahead) if any(c["best_compile"] for c in cases)
                     else "no torch.compile results to compare with")
    return (f"**Targets (issue 4), {n} cases:** faster than eager in {faster}/{n} "
            f"({verdict(faster == n)}); at or ahead of the best torch.compile mode in "
            f"{ahead}/{n}, {need_ahead} needed ({ahead_verdict}); cold build < "
            f"{BUILD_TARGET_S:.0f} s in {built}/{n} ({verdict(built == n)}); a cached engine "
            f"loads and runs its first call (kiln.load of a saved module + first call) in < "
            f"{LOAD_TARGET_S} s in {saved}/{n} ({verdict(saved == n)})"
            + (f", in a new process {fresh}/{measured_fresh} ({verdict(fresh == n)}; after "
               f"torch.export's one-time warm-up in the process, {min(warmups):.1f}-{max(warmups):.1f} "
               "s, timed apart)" if measured_fresh and warmups else
               f", in a new process {fresh}/{measured_fresh} ({verdict(fresh == n)})"
               if measured_fresh else "")
            + (f"; in a new process whose CUDA libraries have started (a few tiny eager ops "
               f"first) {warm}/{measured_warm}"
               + (f" ({verdict(warm == n)})" if measured_warm == n else
                  f" of the {measured_warm} cases measured so") if measured_warm else "")
            + (f"; kiln's first call in a new process at or below eager's first call there in "
               f"{below_eager}/{measured_eager} measured" if measured_eager else "")
            + f"; kiln.compile from the engine cache + first call < {LOAD_TARGET_S} s in "
            f"{ready}/{n}.")


def kiln_details(cases: list, by_case: dict) -> list:
    lines = ["## kiln details", "",
             "| model | batch | engines | PyTorch segments | build s | cached compile s "
             "(+ first call) | kiln.load s (+ first call) | new process: kiln.load s (+ first "
             "call) | new process, libraries started: kiln.load s (+ first call) | eager's first "
             "call in a new process s | cosine vs fp32 | p10–p90 ms | wall mean ms |",
             "|---" * 13 + "|"]
    for case in cases:
        r = by_case[case].get("kiln")
        if not r or r.get("median_ms") is None:
            continue
        cells = [case[0], str(case[1]), str(r.get("engines", "–")),
                 str(r.get("torch_segments", "–")), _s(r.get("build_s")),
                 f"{_s(r.get('load_s'))} (+{_s(r.get('load_first_call_s'))})",
                 f"{_s(r.get('load_s_saved'))} (+{_s(r.get('load_saved_first_call_s'))})",
                 f"{_s(r.get('load_fresh_s'))} (+{_s(r.get('load_fresh_first_call_s'))})",
                 f"{_s(r.get('load_fresh_warm_s'))} (+{_s(r.get('load_fresh_warm_first_call_s'))})",
                 _s(r.get("eager_fresh_first_call_s")),
                 f"{r['cosine']:.6f}", f"{r['p10_ms']:.3f}–{r['p90_ms']:.3f}",
                 f"{r['wall_mean_ms']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    fallbacks = [(case, by_case[case]["kiln"]["torch_ops"]) for case in cases
                 if by_case[case].get("kiln", {}).get("torch_ops")]
    if fallbacks:
        lines += ["", "Ops left to PyTorch (count):", ""]
        for case, ops in fallbacks:
            listed = ", ".join(f"{op} ({n})" for op, n in list(ops.items())[:12])
            lines.append(f"- {case[0]} batch {case[1]}: {listed}")
    return lines


# --- one model, in this process ------------------------------------------------------------------


def merge_files(paths: list, out_dir: str) -> str:
    stem = os.path.join(out_dir, os.path.splitext(os.path.basename(paths[0]))[0])
    for path in paths:
        merge_rows(stem, read_rows(path))
    return stem


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", metavar="JSON")
    parser.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args(argv)
    stem = merge_files(args.files, args.out_dir)
    print(f"{stem}.json, {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
