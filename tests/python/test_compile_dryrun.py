"""compile(dryrun=...) end to end: the report, and that nothing is built."""
import re

import torch

import kiln
from conftest import assert_outputs_match
from test_compile import Sandwich


def _dryrun(dryrun, **settings):
    model, x = Sandwich().eval(), torch.randn(4, 16)
    ep = torch.export.export(model, (x,))
    return model, x, kiln.compile(ep, inputs=[x], dryrun=dryrun, **settings)


def test_dryrun_prints_the_report_and_builds_nothing(capsys):
    model, x, module = _dryrun(True, min_block_size=2)
    report = capsys.readouterr().out
    assert not [m for m in module.modules() if isinstance(m, kiln.KilnEngineModule)]
    assert re.search(r"\b\d+ of \d+\b|\d+(\.\d+)?%", report), report
    for expected in ("aten.nonzero_static", "aten.histc", "_run_on_acc_0", "_run_on_acc_2",
                     "min_block_size"):
        assert expected in report, (expected, report)
    # The partitioned module still runs (the accelerated parts in PyTorch).
    assert_outputs_match(module(x), model(x))


def test_dryrun_to_a_path_writes_the_report(tmp_path):
    path = tmp_path / "reports" / "dryrun.txt"
    _, _, module = _dryrun(str(path), min_block_size=1)
    text = path.read_text()
    assert "aten.nonzero_static" in text and "_run_on_acc_0" in text
    assert not [m for m in module.modules() if isinstance(m, kiln.KilnEngineModule)]
