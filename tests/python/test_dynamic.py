"""Programs with dynamic dims: several sizes inside the range run; sizes outside it are rejected."""
import pytest
import torch
import torch.nn as nn
from torch.export import Dim

import kiln
from conftest import assert_outputs_match, export


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.fc(y.reshape(y.shape[0], -1)), y.shape[0] * 2


@pytest.fixture(scope="module")
def program():
    torch.manual_seed(0)
    model = Net().eval()
    ep = export(model, (torch.randn(4, 3, 8, 8),), dynamic_shapes=({0: Dim("batch", min=2, max=16)},))
    return model, kiln.Program.from_exported_program(ep)


@pytest.mark.parametrize("batch", [2, 3, 7, 16])
def test_batch_sizes_in_range(program, batch):
    model, prog = program
    x = torch.randn(batch, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
    actual = prog(x)
    assert_outputs_match(actual, expected)
    assert actual[1] == 2 * batch


@pytest.mark.parametrize("batch", [1, 17])
def test_batch_outside_range_is_rejected(program, batch):
    _, prog = program
    with pytest.raises(kiln.OutOfRangeError, match=r"expected a value in \[2, 16\].*found " + str(batch)):
        prog(torch.randn(batch, 3, 8, 8))


def test_static_dim_mismatch_is_rejected(program):
    _, prog = program
    with pytest.raises(kiln.InvalidArgumentError, match=r"dim 2: expected size 8, found 9"):
        prog(torch.randn(4, 3, 9, 8))


def test_wrong_dtype_and_count_are_rejected(program):
    _, prog = program
    with pytest.raises(kiln.InvalidArgumentError, match="expected dtype float32, found float16"):
        prog(torch.randn(4, 3, 8, 8).half())
    with pytest.raises(kiln.InvalidArgumentError, match="expected 1 inputs, found 2"):
        prog.run([torch.randn(4, 3, 8, 8), torch.randn(1)])


def test_derived_dim():
    class Pair(nn.Module):
        def forward(self, x, y):
            return torch.cat([x, y], 0).sum(1)

    batch = Dim("b", min=2, max=32)
    ep = export(Pair(), (torch.randn(4, 3), torch.randn(8, 3)),
                dynamic_shapes=({0: batch}, {0: 2 * batch}))
    prog = kiln.Program.from_exported_program(ep)
    x, y = torch.randn(5, 3), torch.randn(10, 3)
    assert_outputs_match(prog(x, y), Pair()(x, y))
    with pytest.raises(kiln.InvalidArgumentError, match=r"expected size 10"):
        prog(x, torch.randn(9, 3))
