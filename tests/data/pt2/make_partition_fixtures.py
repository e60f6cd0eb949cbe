"""Writes the small .pt2 archives the partitioner tests use (committed; rerun to regenerate).

    python3 tests/data/pt2/make_partition_fixtures.py

Entries are deflated to keep the archives at a few KB; kiln's reader inflates them.
"""
import io
import os
import zipfile

import torch
import torch.nn as nn
from torch.export import Dim

HERE = os.path.dirname(os.path.abspath(__file__))


def seeded_linear(n_in, n_out, scale):
    fc = nn.Linear(n_in, n_out)
    with torch.no_grad():
        fc.weight.copy_(torch.linspace(-1.0, 1.0, n_in * n_out).reshape(n_out, n_in) * scale)
        fc.bias.copy_(torch.linspace(-0.5, 0.5, n_out))
    return fc


class Chain(nn.Module):
    """Two supported runs around a sort (which partition_test.cc's registry lacks) and a cumsum
    (which tests force to PyTorch), with a value (`a`) read on both sides of them."""

    def __init__(self):
        super().__init__()
        self.fc1 = seeded_linear(4, 4, 0.5)
        self.fc2 = seeded_linear(4, 4, -0.25)

    def forward(self, x):
        a = torch.relu(self.fc1(x))
        a = a * 2.0 + 1.0
        s = torch.sort(a, dim=1).values
        t = torch.cumsum(s, dim=1)
        b = torch.tanh(t) - 0.5
        b = torch.sigmoid(self.fc2(b))
        return b * a


class DynamicView(nn.Module):
    """Dynamic batch; x.view(x.shape[0], -1) on both sides of a cumsum, and a symbolic output."""

    def forward(self, x):
        y = torch.relu(x * 2.0 + 1.0)
        z = y.view(y.shape[0], -1)
        z = torch.cumsum(z, dim=1)
        w = z.view(x.shape[0], 2, 3)
        w = torch.sigmoid(w * 3.0 - 1.0)
        return w, x.shape[0] * 2


class Diamond(nn.Module):
    """Branch a feeds a cumsum that feeds the join; branch b feeds the join directly."""

    def forward(self, x):
        a = torch.sin(x) * 2.0 + 1.0
        t = torch.cumsum(a, dim=1)
        b = torch.cos(x) * 3.0 - 1.0
        c = torch.relu(t + b)
        return c * c


def save(ep, name):
    buffer = io.BytesIO()
    torch.export.save(ep, buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info.filename))
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(out.getvalue())


def main():
    torch.manual_seed(0)
    save(torch.export.export(Chain().eval(), (torch.randn(2, 4),)).run_decompositions(),
         "partition_chain.pt2")
    save(torch.export.export(DynamicView().eval(), (torch.randn(4, 2, 3),),
                             dynamic_shapes=({0: Dim("batch", min=2, max=32)},)).run_decompositions(),
         "partition_dynamic_view.pt2")
    save(torch.export.export(Diamond().eval(), (torch.randn(3, 4),)).run_decompositions(),
         "partition_diamond.pt2")


if __name__ == "__main__":
    main()
