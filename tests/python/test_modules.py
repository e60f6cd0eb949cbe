"""Small modules, each exported, run by kiln's reference backend and compared with eager (fp32:
rtol = atol = 1e-4 per output). Between them they cover every op family the reference backend has."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from conftest import check_module


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(16, 32), nn.Linear(32, 8)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x))).softmax(-1)


class ConvBnRelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8, bias=False)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        y = F.relu(self.bn(self.conv(x)))
        y = F.hardswish(self.dw(y))
        return F.max_pool2d(y, 3, 2, 1), F.adaptive_avg_pool2d(y, 1).flatten(1)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv, self.proj = nn.Linear(32, 96), nn.Linear(32, 32)
        self.norm = nn.LayerNorm(32)

    def forward(self, x, mask):
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm(x)).split(32, dim=-1)
        q, k, v = (z.view(b, t, 4, 8).transpose(1, 2) for z in (q, k, v))
        scores = (q @ k.transpose(-2, -1)) * 8 ** -0.5
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
        y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c)
        return x + self.proj(y)


class Sdpa(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)


class Embeddings(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok, self.pos = nn.Embedding(50, 16, padding_idx=0), nn.Embedding(12, 16)

    def forward(self, ids):
        positions = torch.arange(ids.shape[1])
        h = self.tok(ids) + self.pos(positions)[None]
        return h.cumsum(1), torch.gather(h, 2, ids[..., None].clamp(max=15)), h[:, ids[0, :3]]


class ShapeOps(nn.Module):
    def forward(self, x, y):
        a = torch.cat([x, y.permute(0, 2, 1)], dim=1)
        b = a.unsqueeze(0).expand(3, -1, -1, -1).contiguous()
        parts = torch.chunk(b, 2, dim=-1)
        c = torch.stack([parts[0], parts[1].flip(-1)], dim=0)
        return c[..., 1:, ::2].sum(dim=(0, -1)), F.pad(x, (1, 2, 0, 1), value=0.5), x.select(1, 2).t()


class Reductions(nn.Module):
    def forward(self, x):
        return (x.mean(dim=(1, 2), keepdim=True), x.amax(-1), x.amin(0), x.argmax(1), x.var(1),
                x.std(-1, correction=0), x.logsumexp(-1), x.log_softmax(1), x.prod(-1), x.sum())


class Elementwise(nn.Module):
    def forward(self, x, y):
        return (torch.sigmoid(x) * torch.tanh(y), torch.where(x > y, x, y - 1), x.clamp(-0.5, 0.5),
                torch.rsqrt(x.abs() + 1), torch.exp(-x) / (1 + y * y), x.pow(2) - 2 ** y,
                F.silu(x), F.leaky_relu(y, 0.1), F.hardtanh(x), F.elu(y), torch.erf(x))


class IntegerAndBool(nn.Module):
    def forward(self, i, j, m):
        return (i // 3, i % 4, i * j + 7, (i > j) & m, (i != 0) | ~m, i.to(torch.float32) / 2,
                torch.maximum(i, j), i.sum(-1), m.any(-1), m.all(0), (i == j).sum())


class HalfPrecision(nn.Module):
    def forward(self, x, y):
        z = (x.half() * y.half() + 1).relu()
        return z.float(), (x.bfloat16() - y.bfloat16()).abs().float(), z.to(torch.int32)


class Pooling(nn.Module):
    def forward(self, x):
        return (F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), F.max_pool2d(x, 2, ceil_mode=True),
                F.adaptive_avg_pool2d(x, (3, 5)), F.avg_pool2d(x, 2))


class TransposedConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)
        self.c1 = nn.Conv1d(6, 5, 3, padding=1)
        self.gn = nn.GroupNorm(2, 6)

    def forward(self, x):
        y = self.gn(self.up(x))
        return (self.c1(y.flatten(2)), F.interpolate(x, scale_factor=2, mode="nearest"),
                F.interpolate(x, size=(7, 9), mode="bilinear", align_corners=False),
                F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=True),
                F.interpolate(x, size=(8, 3), mode="nearest-exact"))


class Constants(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("scale", torch.linspace(0.5, 2.0, 8))
        self.table = torch.tensor([[1.0, -1.0], [0.5, 2.0]])  # a lifted tensor constant

    def forward(self, x):
        return (x * self.scale) @ torch.ones(8, 2) + self.table.sum(), torch.full_like(x, 3.0), torch.zeros(2, 3)


def rand(*shape):
    return torch.randn(*shape)


CASES = [
    ("mlp", Mlp, lambda: (rand(4, 16),)),
    ("conv_bn_relu", ConvBnRelu, lambda: (rand(2, 3, 17, 17),)),
    ("attention", Attention, lambda: (rand(2, 6, 32), torch.tensor([[True] * 6, [True] * 4 + [False] * 2]))),
    ("sdpa", Sdpa, lambda: (rand(2, 3, 5, 8), rand(2, 3, 5, 8), rand(2, 3, 5, 8))),
    ("embeddings", Embeddings, lambda: (torch.tensor([[1, 4, 0, 9, 3], [2, 0, 7, 7, 1]]),)),
    ("shape_ops", ShapeOps, lambda: (rand(2, 3, 6), rand(2, 6, 4))),
    ("reductions", Reductions, lambda: (rand(3, 4, 5),)),
    ("elementwise", Elementwise, lambda: (rand(3, 7), rand(3, 7))),
    ("integer_and_bool", IntegerAndBool,
     lambda: (torch.randint(-20, 20, (4, 5)), torch.randint(1, 9, (4, 5)), torch.rand(4, 5) > 0.5)),
    ("half_precision", HalfPrecision, lambda: (rand(4, 6), rand(4, 6))),
    ("pooling", Pooling, lambda: (rand(2, 3, 11, 10),)),
    ("transposed_conv", TransposedConv, lambda: (rand(1, 4, 5, 6),)),
    ("constants", Constants, lambda: (rand(3, 8),)),
]


@pytest.mark.parametrize("name,make,inputs", CASES, ids=[c[0] for c in CASES])
def test_module_matches_eager(name, make, inputs):
    check_module(make(), *inputs())
