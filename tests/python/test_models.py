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
    actual = program(*inputs)
    assert_outputs_match(actual, expected)
    # Random-weight models can have tiny outputs (mobilenet_v3_small's are ~1e-9), which any absolute
    # tolerance accepts; the direction of each output must match too (scale-free).
    for a, e in zip(torch.utils._pytree.tree_leaves(actual), torch.utils._pytree.tree_leaves(expected)):
        if isinstance(e, torch.Tensor) and e.is_floating_point():
            assert e.abs().max() > 0, f"{name}: an eager output is all zero; the comparison proves nothing"
            cosine = torch.nn.functional.cosine_similarity(a.double().flatten(), e.double().flatten(), dim=0)
            assert cosine > 0.99999, f"{name}: cosine similarity {cosine.item():.7f}"
