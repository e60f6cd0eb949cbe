"""torch.fft on the reference backend: _fft_r2c, _fft_c2r and _fft_c2c over complex64, each form
torch.fft lowers to, compiled whole (min_block_size=1, require_full_compilation) and compared with
eager on the CPU: norms, one- and two-sided, several dims, odd and even lengths, a strided input,
infinities, and a complex input to the program."""
import pytest
import torch

import kiln
from conftest import assert_outputs_match


class Fn(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *inputs):
        return self.fn(*inputs)


def _compile(fn, *inputs):
    ep = torch.export.export(Fn(fn), inputs)
    targets = {str(n.target) for n in ep.run_decompositions().graph.nodes
               if n.op == "call_function"}
    assert any(t.startswith("aten._fft_") for t in targets), targets
    return kiln.compile(ep, inputs=list(inputs), device="cpu", min_block_size=1,
                        require_full_compilation=True)


CASES = {
    "rfft": lambda x: torch.fft.rfft(x),
    "rfft_ortho_dim0": lambda x: torch.fft.rfft(x, dim=0, norm="ortho"),
    "fft_of_real": lambda x: torch.fft.fft(x, norm="forward"),
    "rfft2": lambda x: torch.fft.rfft2(x),
    "irfft_roundtrip_odd": lambda x: torch.fft.irfft(torch.fft.rfft(x), n=x.shape[-1]),
    "irfft_even_length": lambda x: torch.fft.irfft(torch.fft.rfft(x), n=6),
    "irfftn": lambda x: torch.fft.irfftn(torch.fft.rfftn(x, dim=(0, 1)), dim=(0, 1)),
    "ifft_of_fft": lambda x: torch.fft.ifft(torch.fft.fft(x, dim=0), dim=0),
    "fft2_ortho": lambda x: torch.fft.fft2(torch.fft.rfft(x), norm="ortho"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fft_matches_eager(name):
    torch.manual_seed(0)
    x = torch.randn(6, 7)
    compiled = _compile(CASES[name], x)
    assert_outputs_match(compiled(x), CASES[name](x))


def test_strided_input_and_infinities_give_eager_values():
    """The DC term of a real signal holding an inf has an imaginary part of exactly 0 in eager
    (its FFT never multiplies the inf by a zero twiddle part); the other terms are NaN or inf."""
    x = torch.randn(5, 12)[:, ::2]
    x[1, 2], x[3, 0] = float("inf"), float("nan")
    compiled = _compile(lambda t: torch.fft.rfft(t), x)
    actual, expected = compiled(x), torch.fft.rfft(x)
    assert expected[1, 0].imag == 0
    torch.testing.assert_close(torch.view_as_real(actual), torch.view_as_real(expected),
                               equal_nan=True)


def test_complex_program_input():
    torch.manual_seed(0)
    c = torch.randn(4, 5, dtype=torch.complex64)
    compiled = _compile(lambda t: torch.fft.irfft(t, n=8), c)
    assert_outputs_match(compiled(c), torch.fft.irfft(c, n=8))
