"""Results files, the committed baseline, regressions, and docs/op-coverage.md.

A results file (``results_<device>.json``) is what one sweep found on one backend. The report
merges every results file it is given, so that one page shows each backend (the reference backend
in CI, the CUDA backend from the GPU machine) side by side. The baseline is the reduced form of a
results file that CI compares against: ``{op: {dtype: status}}``.
"""
from __future__ import annotations

import json
import os
from typing import Iterable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(HERE))
REPORT_PATH = os.path.join(REPO_ROOT, "docs", "op-coverage.md")
BASELINE_PATHS = {"cpu": os.path.join(HERE, "baseline_reference.json"),
                  "cuda": os.path.join(HERE, "baseline_cuda.json")}

_REPRO_CHARS_IN_REPORT = 2000  # longer repros (large inputs) stay in the results file

STATUS_WORDS = {
    "pass": "pass",
    "fail": "FAIL",
    "unsupported": "unsupported",
    "partial": "partial",
    "skipped": "skipped",
    "no_samples": "no samples",
}


def results_path(device: str) -> str:
    return os.path.join(HERE, f"results_{device_key(device)}.json")


def device_key(device: str) -> str:
    return "cuda" if device.startswith("cuda") else "cpu"


def load_json(path: str) -> Optional[dict]:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_json(path: str, document: dict) -> None:
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w") as f:
        json.dump(document, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(temporary, path)


def merge_results(old: Optional[dict], new: dict) -> dict:
    """``new`` over ``old`` of the same device: a partial sweep (some ops or dtypes) updates
    those entries and keeps the rest."""
    if not old or old.get("device") != new.get("device"):
        return new
    merged = dict(new)
    ops = {op: dict(entry, dtypes=dict(entry["dtypes"])) for op, entry in old["ops"].items()}
    for op, entry in new["ops"].items():
        if op in ops:
            ops[op]["dtypes"].update(entry["dtypes"])
        else:
            ops[op] = entry
    merged["ops"] = ops
    merged["dtypes"] = sorted(set(old.get("dtypes", [])) | set(new.get("dtypes", [])),
                              key=_dtype_order)
    return merged


def _dtype_order(dtype: str) -> int:
    from conformance.samples import DTYPES

    names = list(DTYPES)
    return names.index(dtype) if dtype in names else len(names)


# --- the baseline --------------------------------------------------------------------------------

def baseline_of(results: dict) -> dict:
    return {
        "device": results["device"],
        "torch": results["torch"],
        "budget": results["budget"],
        "samples_per_opinfo": results["samples_per_opinfo"],
        "statuses": {op: {dtype: verdict["status"] for dtype, verdict in entry["dtypes"].items()}
                     for op, entry in sorted(results["ops"].items())},
    }


def is_regression(baseline_status: Optional[str], status: str) -> bool:
    """A regression: an (op, dtype) that passed no longer passes; one kiln partly ran is declined
    altogether; or kiln gives a wrong result where it did not before (a wrong result is never
    acceptable, so a new ``fail`` counts even where the baseline says unsupported)."""
    if baseline_status is None:
        return status == "fail"
    if baseline_status == "pass":
        return status != "pass"
    if baseline_status == "partial" and status == "unsupported":
        return True
    return status == "fail" and baseline_status != "fail"


# --- the report ----------------------------------------------------------------------------------

def _cell(verdict: Optional[dict]) -> str:
    if verdict is None:
        return ""
    status = verdict["status"]
    word = STATUS_WORDS.get(status, status)
    if status == "fail" and verdict.get("max_abs_err") is not None:
        return f"**{word}** ({_number(verdict['max_abs_err'])})"
    if status == "fail":
        return f"**{word}**"
    if status == "partial":
        return f"{word} ({verdict['passed']}/{verdict['passed'] + verdict['unsupported']})"
    return word


def _number(x: float) -> str:
    if x == float("inf"):
        return "inf"
    return f"{x:.2g}"


def _share(numerator: int, denominator: int) -> str:
    return f"{100.0 * numerator / denominator:.1f}%" if denominator else "-"


def summary_rows(results: dict) -> list[str]:
    """One markdown row per dtype: counts of (op, dtype) by status, then the Core ATen share
    passing, of all Core ATen overloads and of those that have samples at that dtype."""
    rows = []
    core_total = results["core_aten_count"]
    for dtype in results["dtypes"]:
        counts = {s: 0 for s in STATUS_WORDS}
        core_pass = core_sampled = 0
        for entry in results["ops"].values():
            verdict = entry["dtypes"].get(dtype)
            if verdict is None:
                continue
            counts[verdict["status"]] = counts.get(verdict["status"], 0) + 1
            if entry["core"]:
                core_pass += verdict["status"] == "pass"
                core_sampled += verdict["status"] != "no_samples"
        rows.append(f"| {results['backend']} | {dtype} | {counts['pass']} | {counts['fail']} | "
                    f"{counts['unsupported']} | {counts['partial']} | {counts['skipped']} | "
                    f"{counts['no_samples']} | {core_pass} / {core_total} "
                    f"({_share(core_pass, core_total)}) | {core_pass} / {core_sampled} "
                    f"({_share(core_pass, core_sampled)}) |")
    return rows


SUMMARY_HEADER = [
    "| backend | dtype | pass | fail | unsupported | partial | skipped | no samples "
    "| Core ATen passing, of all | Core ATen passing, of those with samples |",
    "|---|---|---|---|---|---|---|---|---|---|",
]


def render(all_results: Iterable[dict]) -> str:
    all_results = sorted(all_results, key=lambda r: device_key(r["device"]))
    lines = [
        "# Op coverage",
        "",
        "Generated by `python3 scripts/op_coverage.py --write-report` from the conformance harness",
        "(`tests/conformance/`): every overload of the installed torch's Core ATen opset and",
        "every op kiln's lowering keeps whole, on PyTorch's OpInfo samples (plus derived NaN/inf,",
        "non-contiguous and integer-extreme variants), compiled with `min_block_size=1,",
        "require_full_compilation=True` and compared with eager on the same device and dtype.",
        "",
        "- **pass**: every sample matches eager (fp32 rtol = atol = 1e-4; fp16 / bf16 one",
        "  rounding step: rtol 2^-10 / 2^-7, atol 1e-5; integers and bool exact; NaN and inf",
        "  where eager has them; see below for eager computed in a wider type).",
        "- **FAIL** (max abs error): a wrong value, dtype or shape, or an error while compiling or",
        "  running that is not kiln declining the op. Never acceptable.",
        "- **unsupported**: kiln declines the op (the partitioner leaves it to PyTorch).",
        "- **partial** (k/n): kiln runs k samples correctly and declines the others.",
        "- **skipped**: eager or torch.export rejects every sample (not kiln's doing).",
        "- **no samples**: no OpInfo sample reaches the overload.",
        "",
        "Random ops (`rand`, `randn`, `randperm`, `native_dropout` in training) have no eager",
        "values to match: the reference backend draws them from its own per-process generator,",
        "the CUDA backend from Philox streams it keeps per step. Their samples are compared by",
        "shape and dtype and by distribution, with checks that fail for a wrong one: `rand` in",
        "[0, 1) with mean and variance within 6 standard errors of U(0, 1)'s, `randn` with mean",
        "and variance within 6 standard errors of N(0, 1)'s, `randperm` a permutation of 0..n-1,",
        "`native_dropout` a bool mask, an output of input * mask / (1 - p) and a kept fraction",
        "within 6 binomial standard errors of 1 - p.",
        "",
        "The symbolic-size ops (`sym_size`, `sym_numel`, `sym_stride`, `sym_storage_offset`,",
        "`sym_is_contiguous`) have hand-written samples exported with dynamic dims",
        "(`torch.export.Dim`), compiled for that range (`kiln.Input(min_shape=, opt_shape=,",
        "max_shape=)`) and compared with eager at two sizes in it. torch.export and kiln's lowering",
        "fold most of them before kiln sees them (`sym_numel` into `sym_size` products, a",
        "contiguous `sym_stride` into a `sym_size` or product, an input's storage offset and",
        "contiguity into constants), so such a sample checks the program kiln runs, whatever",
        "is left of the op in it.",
        "",
    ]
    for results in all_results:
        budget = "every sample" if results["budget"] is None else \
            f"{results['budget']} samples per op and dtype"
        per_opinfo = "all" if results["samples_per_opinfo"] is None else \
            f"the first {results['samples_per_opinfo']}"
        lines.append(f"- {results['backend']}: torch {results['torch']}, kiln {results['kiln']}, "
                     f"{budget} ({per_opinfo} of each OpInfo's), {results['generated']}, "
                     f"{results['elapsed_s']:.0f} s.")
    lines += ["", "## Summary", "",
              "Counts of (op, dtype). The last two columns: Core ATen overloads that pass, out of",
              "all of them, and out of those with samples at that dtype (an op eager does not",
              "define for a dtype, such as bitwise ops on floats, has none).",
              ""] + SUMMARY_HEADER
    for results in all_results:
        lines += summary_rows(results)
    lines += ["", "## By op", ""]
    columns = []
    for results in all_results:
        short = "ref" if device_key(results["device"]) == "cpu" else "cuda"
        columns += [(results, dtype, f"{short} {dtype}") for dtype in results["dtypes"]]
    op_names = sorted({op for r in all_results for op in r["ops"]},
                      key=lambda op: (not _is_core(all_results, op), op))
    lines.append("| op | " + " | ".join(label for _, _, label in columns) + " |")
    lines.append("|---|" + "---|" * len(columns))
    for op in op_names:
        marker = "" if _is_core(all_results, op) else " (kept whole)"
        cells = [_cell(r["ops"].get(op, {}).get("dtypes", {}).get(dtype))
                 for r, dtype, _ in columns]
        lines.append(f"| `{op}`{marker} | " + " | ".join(cells) + " |")
    lines += ["", "## What does not pass, and why", ""]
    for results in all_results:
        lines += _failures_section(results)
    lines += ["## Passes where eager at the same dtype differs", "",
              "kiln matched eager computed in a wider type and rounded once, not eager at the",
              "sample's dtype (whose kernel rounds an intermediate or a Scalar operand to the",
              "storage type, or has a non-finite quirk). Eager's own answer is quoted.", ""]
    for results in all_results:
        lines += _wider_reference_section(results)
    return "\n".join(lines) + "\n"


def _wider_reference_section(results: dict) -> list[str]:
    lines = []
    for op in sorted(results["ops"]):
        for dtype, verdict in results["ops"][op]["dtypes"].items():
            quoted = [n for n in verdict.get("notes", []) if n.startswith("matches eager")]
            if verdict["status"] == "pass" and quoted:
                lines.append(f"- {results['backend']}: `{op}` {dtype}: {quoted[0]}")
    return lines + [""] if lines else []


def _is_core(all_results: list[dict], op: str) -> bool:
    return any(r["ops"].get(op, {}).get("core") for r in all_results)


def _failures_section(results: dict) -> list[str]:
    lines = [f"### {results['backend']}", ""]
    groups = {"fail": [], "partial": [], "unsupported": [], "skipped": [], "no_samples": []}
    for op in sorted(results["ops"]):
        for dtype, verdict in results["ops"][op]["dtypes"].items():
            if verdict["status"] in groups:
                groups[verdict["status"]].append((op, dtype, verdict))
    titles = {"fail": "Wrong results and errors", "partial": "Partly supported",
              "unsupported": "Unsupported", "skipped": "Skipped (eager or export rejects the "
              "samples)", "no_samples": "No samples"}
    for status, title in titles.items():
        items = groups[status]
        if not items:
            continue
        lines += [f"#### {title} ({len(items)})", ""]
        if status == "no_samples":
            by_op: dict[str, list[str]] = {}
            for op, dtype, _ in items:
                by_op.setdefault(op, []).append(dtype)
            lines += [f"- `{op}`: {', '.join(dtypes)}" for op, dtypes in by_op.items()]
            lines.append("")
            continue
        for op, dtype, verdict in _grouped_by_reason(items):
            lines.append(f"- `{op}` {dtype}: {verdict['reason'] or '(no reason recorded)'}")
        lines.append("")
        if status == "fail":
            lines += ["<details><summary>Smallest repro of each wrong result</summary>", ""]
            for op, dtype, verdict in items:
                repro = verdict.get("repro")
                if repro and len(repro) <= _REPRO_CHARS_IN_REPORT:
                    lines += [f"`{op}` {dtype}:", "", "```python", repro, "```", ""]
                elif repro:
                    lines += [f"`{op}` {dtype}: {len(repro)} characters, in "
                              f"{os.path.basename(results_path(results['device']))}", ""]
            lines += ["</details>", ""]
    return lines


def _grouped_by_reason(items: list) -> list:
    """One line per (op, reason): dtypes that fail the same way are listed together."""
    merged: dict[tuple[str, str], list] = {}
    for op, dtype, verdict in items:
        key = (op, _reason_key(verdict["reason"]))
        merged.setdefault(key, []).append((dtype, verdict))
    out = []
    for (op, _), entries in merged.items():
        dtypes = ", ".join(d for d, _ in entries)
        out.append((op, dtypes, entries[0][1]))
    return out


def _reason_key(reason: str) -> str:
    """What groups the dtypes of one op that fail alike: the reason up to the first digit or
    bracket (reasons go on to name the sample's values, indices and shapes)."""
    import re

    return re.split(r"[\d\[]", reason, maxsplit=1)[0] if reason else ""
