"""Ops kiln's lowering keeps whole instead of decomposing them (GPU backends run them better whole):
layer_norm, group_norm, instance_norm and scaled_dot_product_attention. Each small module is
exported, lowered with a table that keeps these ops, checked to still hold each op as one node (and
none of what its decomposition would bring), run by kiln's CPU reference backend and compared with
eager: fp32 at rtol = atol = 1e-4, fp16 at 1e-2 (DESIGN.md's per-op tolerances)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import kiln
from conftest import FP32_ATOL, FP32_RTOL, assert_outputs_match

aten = torch.ops.aten
KEPT = (aten.layer_norm.default, aten.group_norm.default,
        aten.scaled_dot_product_attention.default, aten.instance_norm.default)
FP16_TOL = 1e-2


def kept_table():
    table = torch.export.default_decompositions()
    for op in KEPT:
        table.pop(op, None)
    return table


def export_kept(module: nn.Module, args: tuple) -> torch.export.ExportedProgram:
    ep = torch.export.export(module.eval(), args)
    return ep.run_decompositions(kept_table())


def call_targets(ep: torch.export.ExportedProgram) -> list:
    return [n.target for n in ep.graph.nodes if n.op == "call_function"]


# What each kept op would become if decomposed; none of it may appear when the op stays whole.
DECOMPOSED = {
    aten.layer_norm.default: (aten.native_layer_norm.default, aten.var_mean.correction,
                              aten.rsqrt.default),
    aten.group_norm.default: (aten.native_group_norm.default, aten.var_mean.correction,
                              aten.rsqrt.default),
    aten.instance_norm.default: (aten._native_batch_norm_legit_no_training.default,
                                 aten._native_batch_norm_legit.no_stats,
                                 aten._native_batch_norm_legit.default,
                                 aten._native_batch_norm_legit_functional.default,
                                 aten.native_batch_norm.default, aten.var_mean.correction,
                                 aten.rsqrt.default),
    aten.scaled_dot_product_attention.default: (
        aten._scaled_dot_product_flash_attention_for_cpu.default,
        aten._scaled_dot_product_attention_math.default, aten._safe_softmax.default,
        aten._softmax.default, aten.bmm.default, aten.mm.default),
}


def check(module: nn.Module, args: tuple, op, count: int = 1, rtol: float = FP32_RTOL,
          atol: float = FP32_ATOL):
    ep = export_kept(module, args)
    targets = call_targets(ep)
    assert targets.count(op) == count, f"expected {count} x {op} kept whole, graph has {targets}"
    leaked = [t for t in targets if t in DECOMPOSED[op]]
    assert not leaked, f"{op} was (partly) decomposed into {leaked}"
    program = kiln.Program.from_exported_program(ep)
    with torch.no_grad():
        expected = module(*args)
    assert_outputs_match(program(*args), expected, rtol=rtol, atol=atol)


def randomize_affine(module: nn.Module) -> nn.Module:
    with torch.no_grad():
        for name, p in module.named_parameters():
            p.uniform_(0.5, 1.5) if name.endswith("weight") else p.uniform_(-0.5, 0.5)
    return module


# --- layer_norm --------------------------------------------------------------------------------

class FunctionalLayerNorm(nn.Module):
    def forward(self, x):
        return F.layer_norm(x, (4, 6), eps=1e-3)


def test_layer_norm_module_with_affine():
    check(randomize_affine(nn.LayerNorm(16)), (torch.randn(2, 5, 16),), aten.layer_norm.default)


def test_layer_norm_over_two_dims_without_affine():
    check(FunctionalLayerNorm(), (torch.randn(3, 4, 6) * 3 + 1,), aten.layer_norm.default)


# --- group_norm --------------------------------------------------------------------------------

class FunctionalGroupNorm(nn.Module):
    def forward(self, x):
        return F.group_norm(x, 3)


def test_group_norm_module_with_affine():
    check(randomize_affine(nn.GroupNorm(2, 6)), (torch.randn(2, 6, 5, 5),),
          aten.group_norm.default)


def test_group_norm_rank3_without_affine():
    check(FunctionalGroupNorm(), (torch.randn(2, 6, 7),), aten.group_norm.default)


# --- instance_norm -----------------------------------------------------------------------------

def test_instance_norm_input_statistics():
    check(randomize_affine(nn.InstanceNorm2d(4, affine=True)), (torch.randn(2, 4, 6, 6),),
          aten.instance_norm.default)


def test_instance_norm_running_statistics():
    norm = randomize_affine(nn.InstanceNorm1d(3, affine=True, track_running_stats=True))
    with torch.no_grad():
        norm.running_mean.uniform_(-0.5, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
    check(norm, (torch.randn(2, 3, 9),), aten.instance_norm.default)


class FunctionalInstanceNorm(nn.Module):
    def forward(self, x):
        return F.instance_norm(x)


def test_instance_norm_without_affine():
    check(FunctionalInstanceNorm(), (torch.randn(2, 5, 4, 3),), aten.instance_norm.default)


# --- scaled_dot_product_attention --------------------------------------------------------------

class Sdpa(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v, **self.kwargs)


class MaskedSdpa(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.kwargs = kwargs

    def forward(self, q, k, v, mask):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **self.kwargs)


def qkv(batch: tuple, heads: int, kv_heads: int, length: int, keys: int, e: int, ev: int,
        dtype=torch.float32) -> tuple:
    return (torch.randn(*batch, heads, length, e, dtype=dtype),
            torch.randn(*batch, kv_heads, keys, e, dtype=dtype),
            torch.randn(*batch, kv_heads, keys, ev, dtype=dtype))


SDPA = aten.scaled_dot_product_attention.default


def test_sdpa_value_head_dim_differs():
    check(Sdpa(), qkv((2,), 3, 3, 5, 7, 8, 4), SDPA)


def test_sdpa_custom_scale():
    check(Sdpa(scale=0.2), qkv((2,), 3, 3, 5, 7, 8, 8), SDPA)


@pytest.mark.parametrize("length,keys", [(6, 4), (4, 6), (5, 5)])
def test_sdpa_causal_top_left(length, keys):
    check(Sdpa(is_causal=True), qkv((1,), 2, 2, length, keys, 8, 8), SDPA)


def test_sdpa_bool_mask_with_fully_masked_row():
    # Eager (PyTorch 2.11) gives zeros for a row that attends to nothing; kiln matches.
    mask = torch.rand(5, 7) > 0.4
    mask[:, 0] = True
    mask[2] = False
    check(MaskedSdpa(), qkv((2,), 3, 3, 5, 7, 8, 8) + (mask,), SDPA)


def test_sdpa_bool_mask_per_batch():
    mask = torch.rand(2, 1, 5, 7) > 0.3
    mask[..., 0] = True
    check(MaskedSdpa(), qkv((2,), 3, 3, 5, 7, 8, 6) + (mask,), SDPA)


def test_sdpa_float_mask_broadcast_over_rows():
    check(MaskedSdpa(), qkv((2,), 3, 3, 5, 7, 8, 8) + (torch.randn(3, 1, 7),), SDPA)


def test_sdpa_float_mask_with_scale():
    check(MaskedSdpa(scale=0.5), qkv((1,), 2, 2, 4, 9, 16, 16) + (torch.randn(4, 9),), SDPA)


@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_sdpa_grouped_query_attention(kv_heads):
    check(Sdpa(enable_gqa=True), qkv((2,), 8, kv_heads, 5, 6, 16, 16), SDPA)


def test_sdpa_grouped_query_attention_causal():
    check(Sdpa(enable_gqa=True, is_causal=True), qkv((1,), 4, 2, 6, 6, 8, 8), SDPA)


def test_sdpa_three_dims():
    check(Sdpa(), qkv((), 4, 4, 5, 6, 8, 8), SDPA)


def test_sdpa_five_dims():
    check(Sdpa(is_causal=True), qkv((2, 2), 2, 2, 5, 5, 8, 8), SDPA)


def test_sdpa_float16():
    check(Sdpa(), qkv((1,), 2, 2, 5, 7, 8, 8, dtype=torch.float16), SDPA, rtol=FP16_TOL,
          atol=FP16_TOL)


# --- together ----------------------------------------------------------------------------------

class Block(nn.Module):
    """A pre-norm transformer block: layer norm and attention stay whole, linears decompose."""

    def __init__(self, dim: int = 32, heads: int = 4, kv_heads: int = 2):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = heads, kv_heads, dim // heads
        self.norm1, self.norm2 = randomize_affine(nn.LayerNorm(dim)), randomize_affine(nn.LayerNorm(dim))
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * kv_heads * self.head_dim)
        self.proj, self.mlp = nn.Linear(dim, dim), nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        h = self.norm1(x)
        q = self.q(h).view(b, t, self.heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(h).view(b, t, 2, self.kv_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp(F.gelu(self.norm2(x)))


def test_transformer_block():
    block, x = Block(), torch.randn(2, 9, 32)
    ep = export_kept(block, (x,))
    targets = call_targets(ep)
    assert targets.count(aten.layer_norm.default) == 2 and targets.count(SDPA) == 1, targets
    program = kiln.Program.from_exported_program(ep)
    with torch.no_grad():
        expected = block(x)
    assert_outputs_match(program(x), expected)
