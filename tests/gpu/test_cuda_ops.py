"""Single ops (and small fused patterns) on kiln's CUDA backend against eager on the same GPU.

Each case is a tiny module compiled with ``require_full_compilation=True`` (an op the CUDA backend
does not take fails the compile with kiln.UnsupportedError naming it) and
``pass_through_build_failures=True`` (an engine that fails to build raises instead of falling back
to PyTorch), then compared with eager: FP32 with TF32 off on both sides at rtol = atol = 1e-4, and
FP16 at 1e-2 (DESIGN.md's per-op tolerances).
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

FP32_TOL = 1e-4
FP16_TOL = 1e-2


class Fn(nn.Module):
    """A module from a function of its inputs (and of the submodules given as keywords)."""

    def __init__(self, fn, **submodules):
        super().__init__()
        self.fn = fn
        for name, module in submodules.items():
            setattr(self, name, module)

    def forward(self, *inputs):
        return self.fn(self, *inputs)


class Affine(nn.Module):
    """Parameters for ops that take them as tensors (addmm, matmul)."""

    def __init__(self, *shapes):
        super().__init__()
        self.params = nn.ParameterList([nn.Parameter(torch.randn(*s) * 0.2) for s in shapes])


def randn(*shape):
    return torch.randn(shape)  # a tuple: randn() alone is refused, randn(()) is 0-dim


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(channels)
    with torch.no_grad():  # running statistics that are not the identity
        norm.running_mean.normal_(0.0, 0.5)
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.normal_(1.0, 0.2)
        norm.bias.normal_(0.0, 0.2)
    return norm


def _layer_norm(size: int) -> nn.LayerNorm:
    norm = nn.LayerNorm(size)
    with torch.no_grad():
        norm.weight.normal_(1.0, 0.2)
        norm.bias.normal_(0.0, 0.2)
    return norm


def _bool_mask(batch: int, length: int) -> torch.Tensor:
    mask = torch.rand(batch, 1, length, length) > 0.3
    return mask | torch.eye(length, dtype=torch.bool)  # every query sees at least itself


def _packed_attention(x: torch.Tensor) -> torch.Tensor:
    """Attention over q, k, v that are views of one [B, L, 3 * H * E] projection (as GPT-2's),
    output back to [B, L, H * E]."""
    b, length = x.shape[0], x.shape[1]
    qkv = x.view(b, length, 3, 4, 32).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True)
    return out.transpose(1, 2).reshape(b, length, 128)


def _indices(size: int, *shape: int) -> torch.Tensor:
    """int64 indices into a dim of `size`, negative ones (counted from the end) included."""
    return torch.randint(-size, size, shape)


# name -> () -> (module, example inputs on the CPU, FP32)
CASES = {
    "linear_relu": lambda: (Fn(lambda m, x: torch.relu(m.fc(x)), fc=nn.Linear(32, 64)),
                            (randn(4, 8, 32),)),
    "addmm": lambda: (Fn(lambda m, x: torch.addmm(m.w.params[1], x, m.w.params[0]),
                         w=Affine((32, 24), (24,))), (randn(16, 32),)),
    "bmm": lambda: (Fn(lambda m, a, b: torch.bmm(a, b)), (randn(4, 8, 16), randn(4, 16, 12))),
    "matmul_3d_2d": lambda: (Fn(lambda m, x: torch.matmul(x, m.w.params[0]), w=Affine((16, 12))),
                             (randn(4, 8, 16),)),
    # matmul's vector forms and a linear of one row: the vector as a row or column of a GEMM
    "matmul_dot": lambda: (Fn(lambda m, a, b: torch.matmul(a, b)), (randn(40), randn(40))),
    "matmul_mv": lambda: (Fn(lambda m, a, b: torch.matmul(a, b)), (randn(24, 40), randn(40))),
    "matmul_vm": lambda: (Fn(lambda m, a, b: torch.matmul(a, b)), (randn(40), randn(40, 24))),
    "linear_vector": lambda: (Fn(lambda m, x: m.fc(x), fc=nn.Linear(32, 24)), (randn(32),)),
    "linear_vector_strided": lambda: (Fn(lambda m, x: m.fc(x[::2]), fc=nn.Linear(16, 24)),
                                      (randn(32),)),
    # an empty inner dim: beta * input for addmm, zeros for the others (a zero column times a
    # zero row on cuBLASLt)
    "addmm_k0": lambda: (Fn(lambda m, c, a, b: torch.addmm(c, a, b, beta=0.5, alpha=2.0)),
                         (randn(5, 10), randn(5, 0), randn(0, 10))),
    "bmm_k0": lambda: (Fn(lambda m, a, b: torch.bmm(a, b)), (randn(3, 4, 0), randn(3, 0, 6))),
    "linear_k0_relu": lambda: (Fn(lambda m, x, w, b: torch.relu(torch.nn.functional.linear(
        x, w, b))), (randn(4, 0), randn(6, 0), randn(6))),
    # float64 where no float64 math is needed: widening casts, comparisons, cat
    "float64_compare": lambda: (Fn(lambda m, x: x.double() > (x * 0.5 + 0.25).double()),
                                (randn(64, 8),)),
    "float64_cat": lambda: (Fn(lambda m, x: torch.cat([x.double(), x], dim=1)), (randn(6, 5),)),
    "conv2d": lambda: (nn.Conv2d(8, 16, 3, padding=1), (randn(2, 8, 16, 16),)),
    "conv2d_1x1": lambda: (nn.Conv2d(8, 16, 1), (randn(2, 8, 16, 16),)),
    "conv2d_grouped": lambda: (nn.Conv2d(8, 16, 3, padding=1, groups=4), (randn(2, 8, 16, 16),)),
    "conv2d_depthwise": lambda: (nn.Conv2d(8, 8, 3, padding=1, groups=8),
                                 (randn(2, 8, 16, 16),)),
    "conv2d_strided": lambda: (nn.Conv2d(8, 16, 3, stride=2, padding=1), (randn(2, 8, 15, 15),)),
    "conv2d_dilated": lambda: (nn.Conv2d(8, 16, 3, padding=2, dilation=2),
                               (randn(2, 8, 16, 16),)),
    "conv2d_no_bias": lambda: (nn.Conv2d(8, 16, 3, padding=1, bias=False),
                               (randn(2, 8, 16, 16),)),
    "conv_transpose2d": lambda: (nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1,
                                                    output_padding=1), (randn(2, 8, 8, 8),)),
    "conv_bn_relu": lambda: (Fn(lambda m, x: torch.relu(m.bn(m.conv(x))),
                                conv=nn.Conv2d(8, 16, 3, padding=1, bias=False),
                                bn=_batch_norm(16)), (randn(2, 8, 16, 16),)),
    "conv_residual_add": lambda: (Fn(lambda m, x: torch.relu(m.conv(x) + x),
                                     conv=nn.Conv2d(8, 8, 3, padding=1)), (randn(2, 8, 16, 16),)),
    "max_pool2d": lambda: (nn.MaxPool2d(3, stride=2, padding=1), (randn(2, 8, 16, 16),)),
    "max_pool2d_ceil": lambda: (nn.MaxPool2d(3, stride=2, ceil_mode=True),
                                (randn(2, 8, 15, 15),)),
    "avg_pool2d_ceil": lambda: (nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),
                                (randn(2, 8, 15, 15),)),
    "avg_pool2d_ceil_exclude_pad": lambda: (
        nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
        (randn(2, 8, 15, 15),)),
    "adaptive_avg_pool2d_1": lambda: (nn.AdaptiveAvgPool2d(1), (randn(2, 8, 7, 7),)),
    "adaptive_avg_pool2d_3": lambda: (nn.AdaptiveAvgPool2d(3), (randn(2, 8, 7, 7),)),
    "layer_norm": lambda: (_layer_norm(32), (randn(2, 8, 32) * 3 + 1,)),
    "softmax_last": lambda: (nn.Softmax(dim=-1), (randn(2, 8, 16) * 3,)),
    "softmax_dim1": lambda: (nn.Softmax(dim=1), (randn(2, 8, 16) * 3,)),
    "softmax_dim0": lambda: (nn.Softmax(dim=0), (randn(3, 8, 16) * 3,)),
    "log_softmax_last": lambda: (nn.LogSoftmax(dim=-1), (randn(2, 8, 16) * 3,)),
    "log_softmax_dim1_4d": lambda: (nn.LogSoftmax(dim=1), (randn(2, 8, 4, 4) * 3,)),
    "sdpa": lambda: (Fn(lambda m, q, k, v: F.scaled_dot_product_attention(q, k, v)),
                     (randn(2, 4, 16, 32), randn(2, 4, 16, 32), randn(2, 4, 16, 32))),
    "sdpa_causal": lambda: (Fn(lambda m, q, k, v: F.scaled_dot_product_attention(
        q, k, v, is_causal=True)), (randn(2, 4, 16, 32), randn(2, 4, 16, 32),
                                     randn(2, 4, 16, 32))),
    "sdpa_bool_mask": lambda: (Fn(lambda m, q, k, v, mask: F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask)), (randn(2, 4, 16, 32), randn(2, 4, 16, 32),
                                    randn(2, 4, 16, 32), _bool_mask(2, 16))),
    # fp16 runs these through cuDNN's fused attention, fp32 through GEMM, softmax, GEMM.
    "sdpa_float_mask": lambda: (Fn(lambda m, q, k, v, mask: F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask)), (randn(2, 4, 16, 32), randn(2, 4, 16, 32),
                                    randn(2, 4, 16, 32), randn(2, 1, 16, 16))),
    "sdpa_packed_qkv": lambda: (Fn(lambda m, x: _packed_attention(x)), (randn(2, 16, 384),)),
    "sdpa_cross_causal": lambda: (Fn(lambda m, q, k, v: F.scaled_dot_product_attention(
        q, k, v, is_causal=True)), (randn(2, 4, 8, 32), randn(2, 4, 24, 32),
                                    randn(2, 4, 24, 32))),
    "sdpa_head64_scale": lambda: (Fn(lambda m, q, k, v: F.scaled_dot_product_attention(
        q, k, v, scale=0.3)), (randn(1, 2, 40, 64), randn(1, 2, 40, 64), randn(1, 2, 40, 64))),
    "embedding": lambda: (nn.Embedding(100, 16), (torch.randint(0, 100, (4, 12)),)),
    # Advanced indexing (aten.index.Tensor): index tensors are int64 inputs (negative values
    # included), broadcast together; separated index dims put the broadcast dims first.
    "index_rows": lambda: (Fn(lambda m, x, i: x[i]), (randn(10, 16), _indices(10, 6))),
    "index_middle_2d": lambda: (Fn(lambda m, x, i: x[:, i] * 2.0),
                                (randn(3, 9, 5), _indices(9, 2, 4))),
    "index_last": lambda: (Fn(lambda m, x, i: x[..., i]), (randn(2, 3, 12), _indices(12, 5))),
    "index_two_adjacent": lambda: (Fn(lambda m, x, i, j: x[:, i, j]),
                                   (randn(2, 8, 6, 4), _indices(8, 5), _indices(6, 5))),
    "index_separated": lambda: (Fn(lambda m, x, i, j: x[i, :, j]),
                                (randn(6, 5, 7), _indices(6, 3, 1), _indices(7, 1, 4))),
    "index_broadcast": lambda: (Fn(lambda m, x, i, j: x[i, j]),
                                (randn(6, 7, 3), _indices(6, 3, 1), _indices(7, 1, 4))),
    "index_int32": lambda: (Fn(lambda m, x, i: x[:, i]),
                            (randn(4, 11), _indices(11, 6).to(torch.int32))),
    "index_transposed_input": lambda: (Fn(lambda m, x, i: x.transpose(0, 1)[i] + 1.0),
                                       (randn(6, 9), _indices(9, 4))),
    # GPT2ForSequenceClassification's pooling: one position per batch row.
    "index_arange_gather": lambda: (Fn(lambda m, x, i: x[torch.arange(x.shape[0],
                                                                      device=x.device), i]),
                                    (randn(4, 10, 8), torch.randint(0, 10, (4,)))),
    # A bool mask read at broadcast (batch, key) positions, as transformers' padding masks.
    "index_bool_data": lambda: (Fn(lambda m, x, mask, b, k: torch.where(mask[b, k], x, -x)),
                                (randn(2, 1, 1, 16), torch.rand(2, 16) > 0.3,
                                 torch.arange(2).view(2, 1, 1, 1),
                                 torch.arange(16).view(1, 1, 1, 16))),
    # cumsum along first, middle and last dims, long rows, strided input; integer and bool inputs
    # give int64.
    "cumsum_last": lambda: (Fn(lambda m, x: x.cumsum(-1)), (randn(4, 33),)),
    "cumsum_dim0": lambda: (Fn(lambda m, x: x.cumsum(0)), (randn(50, 16),)),
    "cumsum_middle": lambda: (Fn(lambda m, x: x.cumsum(1)), (randn(2, 40, 8),)),
    "cumsum_long": lambda: (Fn(lambda m, x: x.cumsum(-1)), (randn(2, 5000) * 0.1,)),
    "cumsum_transposed": lambda: (Fn(lambda m, x: x.transpose(0, 1).cumsum(1) * 0.5),
                                  (randn(30, 20),)),
    # GPT-2's position ids from an attention mask.
    "cumsum_positions": lambda: (Fn(lambda m, x, mask: x + (mask.long().cumsum(-1) - 1)
                                    .to(x.dtype)[..., None]),
                                 (randn(4, 512, 8), torch.rand(4, 512) > 0.2)),
    "cumsum_bool": lambda: (Fn(lambda m, mask: mask.cumsum(-1)), (torch.rand(3, 70) > 0.5,)),
    "cumsum_int32": lambda: (Fn(lambda m, i: i.cumsum(0)), (_indices(50, 40, 3).to(torch.int32),)),
    "cumsum_int_to_float": lambda: (Fn(lambda m, i: i.cumsum(1, dtype=torch.float32)),
                                    (_indices(10, 4, 30),)),
    "gelu_erf": lambda: (nn.GELU(), (randn(4, 64) * 2,)),
    "gelu_tanh": lambda: (nn.GELU(approximate="tanh"), (randn(4, 64) * 2,)),
    "silu": lambda: (nn.SiLU(), (randn(4, 64) * 2,)),
    "hardswish": lambda: (nn.Hardswish(), (randn(4, 64) * 3,)),
    "sigmoid": lambda: (nn.Sigmoid(), (randn(4, 64) * 2,)),
    "tanh": lambda: (nn.Tanh(), (randn(4, 64) * 2,)),
    "where": lambda: (Fn(lambda m, x, y: torch.where(x > 0, x, y * 0.5)),
                      (randn(4, 32), randn(4, 32))),
    "cat": lambda: (Fn(lambda m, x, y: torch.cat([x, y * 2.0], dim=1)),
                    (randn(2, 3, 8), randn(2, 5, 8))),
    "permute_contiguous": lambda: (Fn(lambda m, x: x.permute(0, 2, 3, 1).contiguous()
                                      .reshape(x.shape[0], -1) + 1.0), (randn(2, 3, 4, 5),)),
    "sum_last": lambda: (Fn(lambda m, x: x.sum(-1)), (randn(2, 8, 16),)),
    "sum_dims_keepdim": lambda: (Fn(lambda m, x: x.sum((1, 2), keepdim=True)),
                                 (randn(2, 8, 16),)),
    "mean_last": lambda: (Fn(lambda m, x: x.mean(-1)), (randn(2, 8, 16),)),
    "mean_spatial": lambda: (Fn(lambda m, x: x.mean((2, 3))), (randn(2, 8, 7, 7),)),
    "amax_dim1": lambda: (Fn(lambda m, x: x.amax(1)), (randn(2, 8, 16),)),
    "amax_last_keepdim": lambda: (Fn(lambda m, x: x.amax(-1, keepdim=True)),
                                  (randn(2, 8, 16),)),
    "pow": lambda: (Fn(lambda m, x: (x.abs() + 0.5).pow(1.5) + x.pow(2)), (randn(4, 32),)),
    "rsqrt": lambda: (Fn(lambda m, x: torch.rsqrt(x.abs() + 0.1)), (randn(4, 32),)),
    "arange_add": lambda: (Fn(lambda m, x: x + torch.arange(x.shape[-1], device=x.device,
                                                            dtype=x.dtype)), (randn(4, 16),)),
    "expand": lambda: (Fn(lambda m, x, y: x.expand(4, -1, -1) + y),
                       (randn(1, 8, 16), randn(4, 8, 16))),
    "slice_select": lambda: (Fn(lambda m, x: x[:, 1:7:2, 3] * 2.0 + x[:, 0, 5:8]),
                             (randn(2, 8, 16),)),
    "to_dtype_float_roundtrip": lambda: (Fn(lambda m, x: x.half().float() * 2.0),
                                         (randn(4, 32),)),
    "to_dtype_int": lambda: (Fn(lambda m, x: (x * 4.0).to(torch.int32)), (randn(4, 32),)),
}


# Cases a library kiln relies on does not run; kiln must then fail clearly (UnsupportedError
# naming the library's answer), which is what these cases check.
KNOWN_LIMITS = {
    ("conv_transpose2d", torch.float32):
        "cuDNN 9 has no sm_90 engine for a strided fp32 transposed convolution without TF32",
}


def _run_case(cuda, name: str, dtype: torch.dtype, tol: float, equal_nan: bool = False) -> None:
    import kiln

    module, inputs = CASES[name]()
    if not isinstance(module, Fn):
        # Inputs named by Fn's forward: a torch module's own forward names its input `input`,
        # which ep.module() renames to `input_1` (a builtin's name), and kiln's FX split does not
        # follow that renaming yet (KeyError "... names the value 'input' ...").
        module = Fn(lambda m, *xs: m.inner(*xs), inner=module)
    module = module.eval().requires_grad_(False).to(cuda.device, dtype)
    inputs = cuda.to_device(inputs, dtype)
    expected = cuda.eager(module, inputs, allow_tf32=False)
    try:
        compiled = cuda.compile(module, inputs, enabled_precisions={dtype}, disable_tf32=True,
                                min_block_size=1, require_full_compilation=True,
                                pass_through_build_failures=True)
    except kiln.UnsupportedError as error:
        if (name, dtype) in KNOWN_LIMITS:  # declined at build time: PyTorch runs it
            pytest.xfail(f"{KNOWN_LIMITS[(name, dtype)]}: {str(error)[:200]}")
        pytest.fail(f"{name} ({dtype}): the CUDA backend does not take it: {error}")
    parts = cuda.assert_runs_engines_on_gpu(compiled, f"{name} {dtype}")
    assert parts["torch_segments"] == [], (
        f"{name} ({dtype}): PyTorch segments {parts['torch_segments']} run "
        f"{sorted(set(parts['torch_ops']))}")
    with torch.no_grad():
        try:
            actual = compiled(*inputs)
        except kiln.UnsupportedError as error:
            if (name, dtype) in KNOWN_LIMITS:
                pytest.xfail(f"{KNOWN_LIMITS[(name, dtype)]}: {str(error)[:200]}")
            raise
    actual = actual[0] if isinstance(actual, (tuple, list)) and len(actual) == 1 else actual
    assert isinstance(actual, torch.Tensor), f"{name}: expected a tensor, found {type(actual)}"
    assert actual.device == expected.device, f"{name}: output on {actual.device}"
    torch.testing.assert_close(actual, expected, rtol=tol, atol=tol, equal_nan=equal_nan,
                               msg=lambda m: f"{name} ({dtype}): {m}")


@pytest.mark.parametrize("name", list(CASES))
def test_op_fp32(cuda, name):
    _run_case(cuda, name, torch.float32, FP32_TOL)


@pytest.mark.parametrize("name", list(CASES))
def test_op_fp16(cuda, name):
    _run_case(cuda, name, torch.float16, FP16_TOL)


# Fused pointwise chains on the layouts that pick each of the generated kernel's variants
# (pointwise_codegen.h): _vec (dense and 16-byte aligned, any size: the last packet is partial),
# _flat (dense, misaligned), _rows (innermost dim contiguous or broadcast: bias rows, column
# broadcasts, transposed and sliced rows, aligned or not) and _nd (anything else).
def _randint(*shape, high=8):
    return torch.randint(-high, high, shape)


POINTWISE_CASES = {
    "pw_chain_div8": lambda: (Fn(lambda m, x, y: torch.relu(x * y + 0.5) - x),
                              (randn(4, 50, 96), randn(4, 50, 96))),
    "pw_chain_odd": lambda: (Fn(lambda m, x, y: torch.relu(x * y + 0.5) - x),
                             (randn(3, 37), randn(3, 37))),
    "pw_chain_single": lambda: (Fn(lambda m, x, y: torch.sigmoid(x) * y), (randn(1), randn(1))),
    "pw_gelu_odd": lambda: (Fn(lambda m, x: F.gelu(x) * 1.5), (randn(5, 197, 7),)),
    # flatten()[3:]: dense, 3 elements in (misaligned for every packet width).
    "pw_sliced_flat_offset": lambda: (Fn(lambda m, x: x.flatten()[3:] * 2.0 + 1.0),
                                      (randn(5, 41),)),
    # x[1:]: dense, one row of 9 in.
    "pw_sliced_rows_dense": lambda: (Fn(lambda m, x, y: x[1:] - y), (randn(5, 9), randn(4, 9))),
    # Rows with a gap: misaligned (x[:, 1:]) and aligned (x[:, 8:] of 40-element rows).
    "pw_sliced_rows_misaligned": lambda: (Fn(lambda m, x, y: x[:, 1:] + y),
                                          (randn(6, 33), randn(6, 32))),
    "pw_sliced_rows_aligned": lambda: (Fn(lambda m, x, y: x[:, 8:] * y),
                                       (randn(6, 40), randn(6, 32))),
    "pw_transposed_rows": lambda: (Fn(lambda m, x, y: x.transpose(0, 1) + y),
                                   (randn(197, 2, 64), randn(2, 197, 64))),
    "pw_transposed_last": lambda: (Fn(lambda m, x, y: x.t() * y + 1.0),
                                   (randn(16, 24), randn(24, 16))),
    "pw_bias_rows": lambda: (Fn(lambda m, x: x + m.w.params[0], w=Affine((96,))),
                             (randn(4, 10, 96),)),
    "pw_bias_rows_odd": lambda: (Fn(lambda m, x: torch.relu(x + m.w.params[0]), w=Affine((13,))),
                                 (randn(4, 10, 13),)),
    "pw_column_broadcast": lambda: (Fn(lambda m, x, y: (x - y) * 2.0),
                                    (randn(4, 6, 20), randn(4, 6, 1))),
    "pw_zero_dim_operand": lambda: (Fn(lambda m, x, s: x * s + s), (randn(7, 11), randn())),
    "pw_where_compare_odd": lambda: (Fn(lambda m, x, y: torch.where(x > 0.3, x, y * 2.0)),
                                     (randn(7, 13), randn(7, 13))),
    "pw_bool_input": lambda: (Fn(lambda m, mask, x: torch.where(mask, x, x * -3.0)),
                              (torch.rand(5, 19) > 0.5, randn(5, 19))),
    "pw_int64_into_float": lambda: (Fn(lambda m, x, i: x * (i > 3).to(x.dtype) + i.to(x.dtype)),
                                    (randn(5, 19), _randint(5, 19))),
    "pw_int64_compare": lambda: (Fn(lambda m, a, b: a > b), (_randint(9, 13), _randint(9, 13))),
    "pw_int32_chain": lambda: (Fn(lambda m, a, b: a + b * 3),
                               (_randint(3, 37).int(), _randint(3, 37).int())),
    # More packets than the launch has threads (132 * 32 blocks of 256), an odd size: the
    # grid-stride loop and a partial last packet.
    "pw_grid_stride_large": lambda: (Fn(lambda m, x, y: torch.relu(x) * y + x),
                                     (randn(9, 1023, 1001), randn(9, 1023, 1001))),
}
CASES.update(POINTWISE_CASES)


@pytest.mark.parametrize("name", list(POINTWISE_CASES))
def test_pointwise_fp32(cuda, name):
    _run_case(cuda, name, torch.float32, FP32_TOL)


@pytest.mark.parametrize("name", list(POINTWISE_CASES))
def test_pointwise_fp16(cuda, name):
    _run_case(cuda, name, torch.float16, FP16_TOL)



# Math and division ops in the generated pointwise kernels, on inputs that hold NaN, infinities,
# signed zeros, zero and negative divisors and values on integer boundaries: the engine must give
# eager's NaN where eager does (equal_nan), and the same integer quotient on either side of one.
_SPECIALS = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0,
             -7.5, 0.3]


def _specials(*shape, scale=1.0):
    """randn(shape) * scale with _SPECIALS in its first elements."""
    x = torch.randn(shape) * scale
    x.view(-1)[:len(_SPECIALS)] = torch.tensor(_SPECIALS)
    return x


def _special_pairs(scale_a=10.0, scale_b=3.0, n=300):
    """(a, b): every pair of _SPECIALS, then random values and random small integers."""
    s = torch.tensor(_SPECIALS)
    k = len(_SPECIALS)
    a = torch.cat([s.repeat_interleave(k), torch.randn(n) * scale_a,
                   torch.randint(-30, 30, (n,)).float()])
    b = torch.cat([s.repeat(k), torch.randn(n) * scale_b, torch.randint(-5, 6, (n,)).float()])
    return a, b


def _unary(fn, scale=1.0):
    return lambda: (Fn(lambda m, x: fn(x)), (_specials(4, 40, scale=scale),))


def _binary(fn):
    return lambda: (Fn(lambda m, a, b: fn(a, b)), _special_pairs())


MATH_CASES = {
    "acos": _unary(torch.acos),
    "asin": _unary(torch.asin),
    "atan": _unary(torch.atan, scale=5.0),
    "acosh": _unary(torch.acosh, scale=4.0),
    "asinh": _unary(torch.asinh, scale=5.0),
    "atanh": _unary(torch.atanh),
    "cosh": _unary(torch.cosh, scale=4.0),
    "sinh": _unary(torch.sinh, scale=4.0),
    "tan": _unary(torch.tan, scale=2.0),
    "log10": _unary(torch.log10, scale=10.0),
    # Integer inputs give float32, as eager.
    "log10_int": lambda: (Fn(lambda m, i: torch.log10(i) + torch.atan(i)), (_randint(5, 19),)),
    "sinh_int32": lambda: (Fn(lambda m, i: torch.sinh(i)), (_randint(5, 19, high=4).int(),)),
    "isinf": _unary(torch.isinf),
    "isinf_int": lambda: (Fn(lambda m, i: torch.isinf(i)), (_randint(5, 19),)),
    "atan2": _binary(torch.atan2),
    "fmod_tensor": _binary(torch.fmod),
    "fmod_scalar": _unary(lambda x: torch.fmod(x, 1.5), scale=10.0),
    "fmod_scalar_negative": _unary(lambda x: torch.fmod(x, -0.7), scale=10.0),
    # 0.3 is not a half: eager's fmod rounds it to one first.
    "fmod_scalar_inexact": _unary(lambda x: torch.fmod(x, 0.3), scale=10.0),
    "fmod_scalar_zero": _unary(lambda x: torch.fmod(x, 0.0), scale=10.0),
    "fmod_int": lambda: (Fn(lambda m, i: torch.fmod(i, -3) + torch.fmod(i, 4)), (_randint(5, 19),)),
    "remainder_tensor": _binary(torch.remainder),
    "remainder_scalar": _unary(lambda x: x % 1.5, scale=10.0),
    "remainder_scalar_negative": _unary(lambda x: torch.remainder(x, -0.7), scale=10.0),
    "remainder_scalar_inexact": _unary(lambda x: x % 0.3, scale=10.0),
    "remainder_scalar_zero": _unary(lambda x: torch.remainder(x, 0.0), scale=10.0),
    "remainder_int": lambda: (Fn(lambda m, i: i % 3 + torch.remainder(i, -4)), (_randint(5, 19),)),
    "floor_divide_tensor": _binary(lambda a, b: torch.div(a, b, rounding_mode="floor")),
    "trunc_divide_tensor": _binary(lambda a, b: torch.div(a, b, rounding_mode="trunc")),
    "true_divide_tensor_mode": _binary(lambda a, b: torch.div(a, b, rounding_mode=None)),
    # A number divisor: eager multiplies by its reciprocal; 0.3 and 49 are inexact reciprocals.
    "floor_divide_scalar": _unary(lambda x: torch.div(x, 0.3, rounding_mode="floor"), 10.0),
    "floor_divide_scalar_negative": _unary(lambda x: x // -0.7, scale=10.0),
    "floor_divide_scalar_49": lambda: (Fn(lambda m, x: torch.div(x, 49.0, rounding_mode="floor")),
                                       (torch.arange(-1000, 1000).float() * 7,)),
    "floor_divide_scalar_zero": _unary(lambda x: torch.div(x, 0.0, rounding_mode="floor")),
    "trunc_divide_scalar": _unary(lambda x: torch.div(x, 0.3, rounding_mode="trunc"), 10.0),
    "trunc_divide_scalar_49": lambda: (Fn(lambda m, x: torch.div(x, 49.0, rounding_mode="trunc")),
                                       (torch.arange(-1000, 1000).float() * 7,)),
    "floor_divide_int": lambda: (Fn(lambda m, i: i // 3 + i // -4), (_randint(5, 19, high=50),)),
    "trunc_divide_int": lambda: (Fn(lambda m, i: torch.div(i, -3, rounding_mode="trunc")),
                                 (_randint(5, 19, high=50),)),
    "elu": lambda: (nn.ELU(alpha=0.5), (_specials(4, 40, scale=3.0),)),
    "selu": lambda: (nn.SELU(), (_specials(4, 40, scale=3.0),)),
    "celu": lambda: (nn.CELU(alpha=2.0), (_specials(4, 40, scale=3.0),)),
    "hardsigmoid_nan": _unary(F.hardsigmoid, scale=4.0),
    "clamp_tensor": lambda: (Fn(lambda m, x, lo, hi: torch.clamp(x, lo, hi)),
                             (_specials(4, 40, scale=3.0), _specials(4, 40).flip(1) - 1,
                              _specials(40).flip(0) + 1)),
    "clamp_tensor_min": lambda: (Fn(lambda m, x, lo: torch.clamp(x, min=lo)),
                                 (_specials(4, 40, scale=3.0), _specials(4, 40).flip(1))),
    "clamp_tensor_max": lambda: (Fn(lambda m, x, hi: torch.clamp(x, max=hi)),
                                 (_specials(4, 40, scale=3.0), _specials(40).flip(0))),
}
CASES.update(MATH_CASES)


@pytest.mark.parametrize("name", list(MATH_CASES))
def test_math_fp32(cuda, name):
    _run_case(cuda, name, torch.float32, FP32_TOL, equal_nan=True)


@pytest.mark.parametrize("name", list(MATH_CASES))
def test_math_fp16(cuda, name):
    _run_case(cuda, name, torch.float16, FP16_TOL, equal_nan=True)
