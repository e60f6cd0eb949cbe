"""Writes the small .pt2 archives the lowering-pass tests use (committed; rerun to regenerate).

    python3 tests/data/pt2/make_pass_fixtures.py

Every module has fixed, non-trivial weights and batch-norm statistics (seeded), so folding a
batch norm into its convolution changes the weights in a way the tests can observe.
"""
import io
import os
import zipfile

import torch
import torch.nn as nn
from torch.export import Dim

HERE = os.path.dirname(os.path.abspath(__file__))


def randomize_batch_norms(module):
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    return module


class ConvBnBlock(nn.Module):
    """A ResNet basic block: conv-bn-relu, conv-bn, residual add, relu."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(4)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


class ConvTransposeBn(nn.Module):
    """A grouped transposed convolution: its weight is [in, out / groups, kh, kw]."""

    def __init__(self):
        super().__init__()
        self.deconv = nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2)
        self.bn = nn.BatchNorm2d(6)

    def forward(self, x):
        return self.bn(self.deconv(x))


class ConstantSubgraph(nn.Module):
    """x @ w.t() (the transpose of a parameter) and x + (arange(4) + b): both constant parts fold."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.arange(12.0).reshape(3, 4) / 7 - 0.5)
        self.register_buffer("b", torch.tensor([0.25, -0.5, 1.0, 2.0]))

    def forward(self, x):
        return torch.mm(x, self.w.t()), x + (torch.arange(4, dtype=torch.float32) + self.b)


class IdentityOps(nn.Module):
    """Views, clones and copies that change nothing; the second output clones the user input."""

    def forward(self, x):
        a = x.view(2, 4) + 1
        b = a.reshape(2, 4).clone().contiguous()
        c = b.permute(0, 1)
        return c.to(torch.float32) * 2, x.clone()


class ConvBnReluLinear(nn.Module):
    """conv-bn-relu, global pooling, then linear-bn1d: the driver's end-to-end model."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 5)
        self.bn_fc = nn.BatchNorm1d(5)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        y = torch.flatten(self.pool(y), 1)
        return self.bn_fc(self.fc(y))


def save(module, args, name, dynamic_shapes=None):
    torch.manual_seed(0)
    module = randomize_batch_norms(module).eval()
    ep = torch.export.export(module, args, dynamic_shapes=dynamic_shapes).run_decompositions()
    buffer = io.BytesIO()
    torch.export.save(ep, buffer)
    # Deflated to keep the committed files small (torch writes stored, 64-byte aligned entries).
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    with zipfile.ZipFile(os.path.join(HERE, name), "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info, source.read(info.filename), zipfile.ZIP_DEFLATED)


def main():
    torch.manual_seed(0)
    save(ConvBnBlock(), (torch.randn(1, 4, 6, 6),), "pass_conv_bn_block.pt2")
    torch.manual_seed(1)
    save(ConvTransposeBn(), (torch.randn(1, 4, 3, 3),), "pass_conv_transpose_bn.pt2")
    save(ConstantSubgraph(), (torch.randn(2, 4),), "pass_constant_subgraph.pt2")
    save(IdentityOps(), (torch.randn(2, 4),), "pass_identity_ops.pt2")
    torch.manual_seed(2)
    save(ConvBnReluLinear(), (torch.randn(3, 3, 5, 5),), "pass_conv_bn_relu_linear.pt2",
         dynamic_shapes=({0: Dim("batch", min=2, max=16)},))


if __name__ == "__main__":
    main()
