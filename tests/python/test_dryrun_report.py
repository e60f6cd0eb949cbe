"""The dry-run report: its text for a synthetic partition plan, and where it goes."""
from __future__ import annotations

import logging
import os

import pytest
import torch

from kiln._dryrun import TINY_BLOCK_OPS, emit_dryrun_report, format_dryrun_report
from kiln._settings import resolve_settings


def settings(**kwargs):
    return resolve_settings(kwargs, {}, inputs=[torch.zeros(1)], arg_inputs=None,
                            kwarg_inputs=None, stacklevel=1)[0]


def io(name, shape, dt="float32"):
    return {"name": name, "dtype": dt, "shape": shape}


def make_plan(**overrides):
    plan = {
        "total_ops": 60,
        "supported_ops": 57,
        "min_block_size": 5,
        "partitioner": "fast",
        "unsupported": [
            {"op": "aten.sort.default", "reason": "no kernel for sort",
             "nodes": ["sort", "sort_1"]},
            {"op": "aten.nonzero.default", "reason": "output shape depends on data",
             "nodes": ["nonzero"]},
        ],
        "segments": [
            {"name": "_run_on_acc_0", "kind": "acc", "nodes": [f"conv_{i}" for i in range(40)],
             "compute_ops": 40, "inputs": [io("x", "[s0, 3, 224, 224]")],
             "outputs": [io("relu_9", "[s0, 64, 56, 56]")]},
            {"name": "_run_on_gpu_1", "kind": "torch",
             "nodes": ["sort", "sort_1", "nonzero", "add_3", "mul_2", "getitem"],
             "compute_ops": 8, "inputs": [io("relu_9", "[s0, 64, 56, 56]")],
             "outputs": [io("getitem", "[s0, 64]", "int64")]},
            {"name": "_run_on_acc_2", "kind": "acc", "nodes": [f"linear_{i}" for i in range(12)],
             "compute_ops": 12, "inputs": [io("getitem", "[s0, 64]", "int64"),
                                           io("w", "[64, 10]", "float16")],
             "outputs": [io("out", "[s0, 10]", "float16")]},
        ],
        # Blocks before min_block_size: 40 and 12 became engines; 4, 2 and 1 were left to PyTorch.
        "candidate_block_sizes": [40, 4, 12, 2, 1],
    }
    plan.update(overrides)
    return plan


def lines_of(text):
    return [line.rstrip() for line in text.splitlines()]


def test_report_sections():
    report = format_dryrun_report(make_plan(), settings(enabled_precisions={torch.float16,
                                                                             torch.float32}))
    lines = lines_of(report)
    assert lines[0] == "kiln dry run: the graph was partitioned; no engines were built"
    assert ("  settings: min_block_size=5, partitioner=fast, precisions=float16,float32"
            in lines)
    assert "Ops: 60 in the graph, 57 supported by kiln (95.0%)" in lines
    assert "Unsupported ops: 2 kind(s), 3 node(s)" in lines
    assert "  aten.sort.default x2: no kernel for sort" in lines
    assert "      nodes: sort, sort_1" in lines
    assert "  aten.nonzero.default x1: output shape depends on data" in lines
    # Sorted by node count: sort (2 nodes) before nonzero (1).
    assert lines.index("  aten.sort.default x2: no kernel for sort") < lines.index(
        "  aten.nonzero.default x1: output shape depends on data")
    assert "Nodes left to PyTorch: 6 in 1 segment(s)" in lines
    assert "  _run_on_gpu_1 (8 ops):" in lines
    assert "      sort, sort_1, nonzero, add_3, mul_2, getitem" in lines
    assert "Engines: 2" in lines
    assert "  _run_on_acc_0: 40 ops" in lines
    assert "    inputs:  x: float32[s0, 3, 224, 224]" in lines
    assert "    outputs: relu_9: float32[s0, 64, 56, 56]" in lines
    assert "    inputs:  getitem: int64[s0, 64], w: float16[64, 10]" in lines
    assert "  engines: 2; ops per engine: min 12, mean 26.0, max 40" in lines
    assert ("  ops in engines: 52 (86.7% of the graph); ops in PyTorch: 8 (13.3%)" in lines)


def test_min_block_size_advice():
    lines = lines_of(format_dryrun_report(make_plan(), settings()))
    start = lines.index("min_block_size")
    table = lines[start:]
    assert "  5 candidate blocks of supported ops (59 ops); what each min_block_size would " \
           "accelerate:" in table
    rows = {int(line.split()[0]): line.split() for line in table
            if line.strip() and line.split()[0].isdigit()}
    assert sorted(rows) == [1, 2, 4, 5, 12, 40]  # every distinct size, and the current value
    assert rows[1][1:3] == ["5", "59"]
    assert rows[4][1:3] == ["3", "56"]
    assert rows[5][1:3] == ["2", "52"] and rows[5][-1] == "(current)"
    assert rows[5][3] == "86.7%"  # of the graph's 60 ops
    assert rows[40][1:3] == ["1", "40"]
    assert ("  min_block_size=5 leaves 3 block(s) of 7 supported op(s) to PyTorch "
            "(sizes [1, 2, 4])." in table)
    # 4 is the smallest size at or above the tiny-engine floor (3): the most ops without tiny ones.
    assert TINY_BLOCK_OPS == 3
    advice = " ".join(line.strip() for line in table[table.index(next(
        line for line in table if "recommendation" in line)):])
    assert advice.startswith("recommendation: min_block_size=4 accelerates 56 ops in 3 engines "
                             "(current: 52 ops in 2 engines)")
    assert all(len(line) <= 100 for line in lines)


def test_advice_when_current_value_is_already_best():
    plan = make_plan(candidate_block_sizes=[40, 12, 2], min_block_size=3)
    text = format_dryrun_report(plan, settings(min_block_size=3))
    assert "recommendation: min_block_size=3 (current) already accelerates every block of 3 or " \
           "more ops." in " ".join(text.split())
    assert "leaves 1 block(s) of 2 supported op(s)" in text


def test_advice_when_every_block_is_tiny():
    text = format_dryrun_report(make_plan(candidate_block_sizes=[1, 2, 1]), settings())
    assert "every candidate block has fewer than 3 ops" in text
    assert "recommendation" not in text


def test_advice_without_candidates_and_empty_graph():
    plan = make_plan(total_ops=0, supported_ops=0, unsupported=[], segments=[],
                     candidate_block_sizes=[])
    text = format_dryrun_report(plan, None)
    assert "Ops: 0 in the graph, 0 supported by kiln (n/a)" in text
    assert "Unsupported ops: 0 kind(s), 0 node(s)\n  (none)" in text
    assert "Engines: 0" in text and "  engines: 0\n" in text
    assert "no blocks of supported ops were found" in text


def test_settings_shown_in_report():
    s = settings(torch_executed_ops={torch.ops.aten.sort.default}, use_fast_partitioner=False)
    plan = make_plan()
    del plan["partitioner"]  # falls back to the settings
    text = format_dryrun_report(plan, s)
    assert "partitioner=global" in text
    assert "  torch_executed_ops: aten.sort.default" in text


def test_malformed_plan():
    with pytest.raises(TypeError, match="dry-run plan must be a dict, found list"):
        format_dryrun_report([], None)
    plan = make_plan()
    del plan["segments"]
    with pytest.raises(ValueError, match="dry-run plan lacks 'segments'"):
        format_dryrun_report(plan, None)
    with pytest.raises(TypeError, match="'total_ops' must be a int, found str"):
        format_dryrun_report(make_plan(total_ops="60"), None)


def test_long_node_lists_are_wrapped():
    nodes = [f"a_very_long_node_name_{i}" for i in range(30)]
    plan = make_plan(unsupported=[{"op": "aten.sort.default", "reason": "r", "nodes": nodes}])
    lines = lines_of(format_dryrun_report(plan, None))
    node_lines = [line for line in lines if "a_very_long_node_name" in line]
    assert len(node_lines) > 1 and all(len(line) <= 100 for line in node_lines)
    assert sum(line.count("a_very_long_node_name") for line in node_lines) == 30


def test_emit_to_stdout_and_log(capsys, caplog):
    report = format_dryrun_report(make_plan(), None)
    with caplog.at_level(logging.INFO, logger="kiln"):
        emit_dryrun_report(report, True)
    assert capsys.readouterr().out == report
    assert [r.getMessage() for r in caplog.records if r.name == "kiln"] == [report]


def test_emit_nothing_when_off(capsys, caplog):
    with caplog.at_level(logging.INFO, logger="kiln"):
        emit_dryrun_report("report\n", False)
    assert capsys.readouterr().out == "" and caplog.records == []


def test_emit_to_a_path(tmp_path, capsys, caplog):
    report = format_dryrun_report(make_plan(), None)
    target = tmp_path / "reports" / "nested" / "dryrun.txt"
    with caplog.at_level(logging.INFO, logger="kiln"):
        emit_dryrun_report(report, str(target))
    assert target.read_text() == report
    assert capsys.readouterr().out == ""
    assert str(target) in caplog.text
    assert os.listdir(target.parent) == ["dryrun.txt"]  # no temp file left
    emit_dryrun_report("second\n", target)  # a PathLike, replacing the first
    assert target.read_text() == "second\n"
    assert os.listdir(target.parent) == ["dryrun.txt"]


def test_emit_rejects_other_values():
    for bad in (1, None, ""):
        with pytest.raises(TypeError, match="dryrun must be True, False or a file path"):
            emit_dryrun_report("r", bad)
