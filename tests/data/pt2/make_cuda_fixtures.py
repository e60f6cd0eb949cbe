"""Writes the small .pt2 archives the CUDA planner and cross-compilation tests use (committed;
rerun to regenerate). The programs are lowered with kiln's own decomposition table, as
kiln.compile lowers them.

    python3 tests/data/pt2/make_cuda_fixtures.py
"""
import importlib.util
import io
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.export import Dim

HERE = os.path.dirname(os.path.abspath(__file__))

# kiln's lowering module, loaded by path so that the fixtures can be made before kiln is built.
_spec = importlib.util.spec_from_file_location(
    "kiln_lowering", os.path.join(HERE, "..", "..", "..", "python", "kiln", "_lowering.py"))
_lowering = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_lowering)


def lower(ep):
    """kiln.compile's lowering: core ATen, keeping whole the ops kiln runs whole (every one of
    them has a kiln CPU kernel, which decomposition_table() checks through the built library)."""
    table = torch.export.default_decompositions()
    for op in _lowering._kept_whole():
        table.pop(op, None)
    return ep.run_decompositions(table)


class ConvNet(nn.Module):
    """conv+bn+relu, a residual block, pooling, a classifier: what ResNets are made of."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.conv2(y) + y)
        y = self.pool(y)
        y = F.avg_pool2d(y, 3, 2, ceil_mode=True)
        y = F.adaptive_avg_pool2d(y, 1).flatten(1)
        return torch.softmax(F.relu(self.fc(y)), dim=1)


class Transformer(nn.Module):
    """Embeddings, layer norm, causal attention, a GELU MLP: a GPT block."""

    def __init__(self):
        super().__init__()
        self.tokens = nn.Embedding(100, 32)
        self.positions = nn.Embedding(16, 32)
        self.norm = nn.LayerNorm(32)
        self.qkv = nn.Linear(32, 96)
        self.proj = nn.Linear(32, 32)
        self.up = nn.Linear(32, 64)
        self.down = nn.Linear(64, 32)

    def forward(self, ids):
        b, t = ids.shape
        x = self.tokens(ids) + self.positions(torch.arange(t, device=ids.device))
        q, k, v = self.qkv(self.norm(x)).split(32, dim=2)
        q, k, v = (z.view(b, t, 4, 8).transpose(1, 2) for z in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, 32))
        x = x + self.down(F.gelu(self.up(x), approximate="tanh"))
        return x.mean(dim=1)


class EncoderBlock(nn.Module):
    """torchvision's ViT encoder block: nn.MultiheadAttention (batch_first) splits heads through a
    chain of views whose middle step no strides express, and transposes around its projections."""

    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(32)
        self.attention = nn.MultiheadAttention(32, 4, batch_first=True)
        self.ln_2 = nn.LayerNorm(32)
        self.mlp = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))

    def forward(self, x):
        y = self.ln_1(x)
        y, _ = self.attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class WrittenOutAttention(nn.Module):
    """Attention as models write it by hand: q @ k^T / sqrt(d) + mask, softmax, @ v."""

    def forward(self, q, k, v, mask):
        scores = q @ k.transpose(-2, -1) / 4.0 + mask
        return torch.softmax(scores, dim=-1) @ v


def save(module, args, name, dynamic_shapes=None):
    torch.manual_seed(0)
    module.eval()
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    ep = lower(torch.export.export(module, args, dynamic_shapes=dynamic_shapes))
    buffer = io.BytesIO()
    torch.export.save(ep, buffer)
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(buffer.getvalue())
    print(name, len(buffer.getvalue()), "bytes")


def main():
    torch.manual_seed(0)
    save(ConvNet(), (torch.randn(2, 3, 16, 16),), "cuda_convnet.pt2",
         dynamic_shapes=({0: Dim("batch", min=1, max=8)},))
    torch.manual_seed(0)
    save(Transformer(), (torch.randint(0, 100, (2, 8)),), "cuda_transformer.pt2")
    torch.manual_seed(0)
    save(EncoderBlock(), (torch.randn(3, 5, 32),), "cuda_encoder_block.pt2")
    torch.manual_seed(0)
    save(WrittenOutAttention(), (torch.randn(2, 4, 8, 16), torch.randn(2, 4, 10, 16),
                                 torch.randn(2, 4, 10, 16), torch.randn(2, 1, 8, 10)),
         "cuda_written_attention.pt2")


if __name__ == "__main__":
    main()
