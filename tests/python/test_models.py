"""The five reference models, exported with random weights, run by kiln and compared with eager.

fp32, per output element: rtol = atol = 1e-4 (DESIGN.md)."""
import pytest
import torch

import kiln
from conftest import assert_outputs_match, export
from models import MODELS


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MODELS))
def test_model_matches_eager(name):
    torch.manual_seed(0)
    model, inputs = MODELS[name]()
    model.eval()
    program = kiln.Program.from_exported_program(export(model, inputs))
    assert program.unsupported_ops == []
    with torch.no_grad():
        expected = model(*inputs)
    assert_outputs_match(program(*inputs), expected)
