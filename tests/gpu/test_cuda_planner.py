"""What kiln's CUDA planner rewrites, against eager on the same GPU: values stored in a permuted
order, views composed through reshapes strides alone cannot express, a linear over permuted rows,
a convolution run as a GEMM, residual adds folded into GEMMs, and attention written out by hand
(matmul, softmax, matmul) run as one attention step (tests/cuda/planner_test.cc checks the plans;
these check the numbers).

Tolerances as test_cuda_ops.py: FP32 with TF32 off on both sides at 1e-4, FP16 at 1e-2.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

TOLERANCE = {torch.float32: 1e-4, torch.float16: 1e-2}


class EncoderBlock(nn.Module):
    """torchvision's ViT encoder block (nn.MultiheadAttention, batch_first)."""

    def __init__(self, dim: int = 64, heads: int = 4):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x):
        y = self.ln_1(x)
        y, _ = self.attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class HeadsAttention(nn.Module):
    """Hugging Face's split: q, k, v as [B, L, H, D] views transposed to [B, H, L, D], the output
    transposed back and reshaped to [B, L, H * D] for the out-projection."""

    def __init__(self, dim: int = 64, heads: int = 4):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x):
        b, length, dim = x.shape
        q, k, v = self.qkv(x).split(dim, dim=2)
        q, k, v = (t.view(b, length, self.heads, dim // self.heads).transpose(1, 2)
                   for t in (q, k, v))
        a = F.scaled_dot_product_attention(q, k, v)
        return self.out(a.transpose(1, 2).reshape(b, length, dim)) + x


class PermutedLinear(nn.Module):
    """A linear over a permuted view, permuted back and added: the GEMM reads x in place and
    writes in x's order."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(32, 48)

    def forward(self, x):
        return self.fc(x.permute(1, 0, 2)).permute(1, 0, 2).relu()


class Patchify(nn.Module):
    """ViT's patch embedding: a convolution whose kernel tiles the image (run as a GEMM)."""

    def __init__(self, relu: bool):
        super().__init__()
        self.conv = nn.Conv2d(3, 48, 8, stride=8)
        self.relu = relu

    def forward(self, x):
        y = self.conv(x)
        y = y.relu() if self.relu else y
        return y.flatten(2).transpose(1, 2)


class WrittenOutAttention(nn.Module):
    """q @ k^T * scale (+ mask), softmax, @ v, with q, k, v split from one projection."""

    def __init__(self, length: int, masked: bool, divide: bool):
        super().__init__()
        self.qkv = nn.Linear(64, 192)
        self.masked = masked
        self.divide = divide
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        # A causal additive mask, as older models build it.
        self.register_buffer("mask", torch.zeros(length, length).masked_fill(~causal, -10000.0))

    def forward(self, x):
        b, length, _ = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, 4, 16).permute(2, 0, 3, 1, 4)
        scores = q @ k.transpose(-2, -1)
        scores = scores / 4.0 if self.divide else scores * 0.25
        if self.masked:
            scores = scores + self.mask
        out = torch.softmax(scores, dim=-1) @ v
        return out.transpose(1, 2).reshape(b, length, 64)


class Residual(nn.Module):
    """A projection plus a residual, which kiln folds into the GEMM as its C operand: read in
    place when it has the output's layout, else first copied into the output."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.fc = nn.Linear(32, 32)
        self.weight = nn.Parameter(torch.randn(32, 32) * 0.2)

    def forward(self, x):
        if self.kind == "linear":
            return self.fc(x) + x
        if self.kind == "transposed":  # a residual of another layout: copied into the output
            return self.fc(x) + x.transpose(1, 2)
        if self.kind == "addmm":  # GPT-2's Conv1D
            flat = x.reshape(-1, 32)
            return torch.addmm(self.fc.bias, flat, self.weight) + flat
        return torch.mm(x.reshape(-1, 32), self.weight) + x.reshape(-1, 32).relu()


CASES = {
    "written_attention": lambda: (WrittenOutAttention(24, masked=False, divide=True),
                                  torch.randn(2, 24, 64)),
    "written_attention_masked": lambda: (WrittenOutAttention(40, masked=True, divide=False),
                                         torch.randn(3, 40, 64)),
    "residual_linear": lambda: (Residual("linear"), torch.randn(4, 6, 32)),
    "residual_transposed": lambda: (Residual("transposed"), torch.randn(3, 32, 32)),
    "residual_addmm": lambda: (Residual("addmm"), torch.randn(4, 6, 32)),
    "residual_mm": lambda: (Residual("mm"), torch.randn(3, 7, 32)),
    "encoder_block": lambda: (EncoderBlock(), torch.randn(3, 17, 64)),
    "encoder_block_batch1": lambda: (EncoderBlock(), torch.randn(1, 9, 64)),
    "heads_attention": lambda: (HeadsAttention(), torch.randn(2, 24, 64)),
    "permuted_linear": lambda: (PermutedLinear(), torch.randn(5, 7, 32)),
    "patchify": lambda: (Patchify(relu=False), torch.randn(2, 3, 32, 40)),
    "patchify_relu": lambda: (Patchify(relu=True), torch.randn(3, 3, 24, 24)),
    # 30 is not a multiple of the 8-pixel patch: the last two rows and columns are dropped.
    "patchify_ragged": lambda: (Patchify(relu=False), torch.randn(1, 3, 30, 30)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("name", list(CASES))
def test_layout_case(cuda, name, dtype):
    module, x = CASES[name]()
    module = module.eval().requires_grad_(False).to(cuda.device, dtype)
    x = x.to(cuda.device, dtype)
    expected = cuda.eager(module, (x,), allow_tf32=False)
    compiled = cuda.compile(module, (x,), enabled_precisions={dtype}, disable_tf32=True,
                            min_block_size=1, require_full_compilation=True,
                            pass_through_build_failures=True)
    parts = cuda.assert_runs_engines_on_gpu(compiled, f"{name} {dtype}")
    assert parts["torch_segments"] == [], f"{name}: PyTorch runs {sorted(set(parts['torch_ops']))}"
    with torch.no_grad():
        actual = cuda.first_tensor(compiled(x))
    tol = TOLERANCE[dtype]
    torch.testing.assert_close(actual, cuda.first_tensor(expected), rtol=tol, atol=tol,
                               msg=lambda m: f"{name} ({dtype}): {m}")
