"""The kiln CLI on engines: compile a .pt2 into an engine, inspect it, run it."""
import numpy as np
import pytest
import torch
from torch.export import Dim

from conftest import export, run_cli
from test_cli import Net


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    torch.manual_seed(0)
    model = Net().eval()
    ep = export(model, (torch.randn(5, 4), torch.arange(3)),
                dynamic_shapes=({0: Dim("batch", min=2, max=64)}, None))
    directory = tmp_path_factory.mktemp("cli_engine")
    path = directory / "net.pt2"
    torch.export.save(ep, str(path))
    return model, path, directory


def test_compile_inspect_and_run_an_engine(program):
    model, path, directory = program
    engine = directory / "net.engine"
    out = run_cli("compile", path, "-o", engine, "--input-shape", "x=2x4:8x4:16x4").stdout
    assert "built net for cpu" in out and engine.exists()
    assert engine.read_bytes()[4:8] == b"KILN"

    text = run_cli("inspect", engine, "--no-ir").stdout
    for expected in ("engine: net", "target: cpu", "kiln 0.", "inputs:", "x: float32[s",
                     "ids: int64[3]", "outputs:", "min 2, opt 8, max 16", "weights: 2 tensors",
                     "aten.addmm.default"):
        assert expected in text, (expected, text)

    x = np.random.default_rng(0).standard_normal((7, 4)).astype(np.float32)
    ids = np.arange(3, dtype=np.int64)
    np.save(directory / "x.npy", x)
    np.save(directory / "ids.npy", ids)
    out_dir = directory / "out"
    run_cli("run", engine, "--input", f"x={directory / 'x.npy'}", "--input",
            f"ids={directory / 'ids.npy'}", "--output-dir", out_dir)
    expected = model(torch.from_numpy(x), torch.from_numpy(ids))
    np.testing.assert_allclose(np.load(out_dir / "output_0.npy"), expected[0].detach().numpy(),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.load(out_dir / "output_1.npy"), expected[1].numpy())


def test_engine_rejects_sizes_outside_its_profile(program):
    _, path, directory = program
    engine = directory / "narrow.engine"
    run_cli("compile", path, "-o", engine, "--input-shape", "x=2x4:4x4:8x4")
    np.save(directory / "big.npy", np.zeros((9, 4), np.float32))
    result = run_cli("run", engine, "--input", f"x={directory / 'big.npy'}", "--random",
                     check=False)
    assert result.returncode == 1
    assert "expected a value in [2, 8]" in result.stderr and "found 9" in result.stderr


def test_compile_errors_are_one_clear_line(program, tmp_path):
    _, path, directory = program
    cases = [
        (["compile", path], "usage: kiln compile"),
        (["compile", path, "-o", tmp_path / "e", "--input-shape", "nope=1x4"], "not an input"),
        (["compile", path, "-o", tmp_path / "e", "--input-shape", "x=1x4:2x4"], "MIN:OPT:MAX"),
        (["compile", path, "-o", tmp_path / "e", "--input-shape", "x=1x4:4x4:128x4"],
         "outside the range"),
        (["compile", path, "-o", tmp_path / "e", "--precision", "fp8"], "fp32, fp16 or bf16"),
        (["compile", path, "-o", tmp_path / "e", "--target", "sm_10"], "sm_10"),
    ]
    for args, message in cases:
        result = run_cli(*args, check=False)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert result.stderr.count("kiln: error:") == 1
    assert not (tmp_path / "e").exists()


def test_unsupported_program_lists_its_ops(tmp_path):
    class Uniques(torch.nn.Module):  # unique's output shape depends on the data; kiln declines it
        def forward(self, x):
            return torch.unique(x.relu()) * 2

    path = tmp_path / "uniques.pt2"
    torch.export.save(export(Uniques(), (torch.randn(3, 4),)), str(path))
    result = run_cli("compile", path, "-o", tmp_path / "uniques.engine", check=False)
    assert result.returncode == 1
    assert "aten._unique2" in result.stderr and "1 node" in result.stderr


def test_corrupt_engine_is_reported(program, tmp_path):
    _, path, _ = program
    engine = tmp_path / "c.engine"
    run_cli("compile", path, "-o", engine)
    data = bytearray(engine.read_bytes())
    truncated = tmp_path / "t.engine"
    truncated.write_bytes(bytes(data[: len(data) // 3]))
    result = run_cli("inspect", truncated, check=False)
    assert result.returncode == 1 and "corrupt" in result.stderr.lower(), result.stderr


def test_inspect_plan_lists_a_cuda_engines_steps(program):
    """--plan shows the steps the CUDA runtime will run (planned here, without a GPU); a CPU engine
    has none and says so."""
    _, path, directory = program
    engine = directory / "net_sm90.engine"
    built = run_cli("compile", path, "-o", engine, "--target", "sm_90", check=False)
    if "without the CUDA backend" in built.stderr:
        pytest.skip("this kiln was built without the CUDA backend")
    assert built.returncode == 0, built.stderr
    text = run_cli("inspect", engine, "--plan", "--no-ir").stdout
    assert "plan: " in text and " steps, arena " in text, text
    assert "0: gemm[aten.addmm.default + aten.relu.default]" in text, text

    cpu_engine = directory / "net.engine"
    if not cpu_engine.exists():
        run_cli("compile", path, "-o", cpu_engine)
    refused = run_cli("inspect", cpu_engine, "--plan", check=False)
    assert refused.returncode != 0
    assert "cpu backend have no step plan" in refused.stderr, refused.stderr
