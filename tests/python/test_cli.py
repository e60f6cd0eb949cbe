"""The kiln CLI: inspect and run .pt2 archives, .npy inputs and outputs, clear failures."""
import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.export import Dim

from conftest import export, run_cli


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x, ids):
        return torch.relu(self.fc(x)), ids * 2


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    model = Net().eval()
    ep = export(model, (torch.randn(5, 4), torch.arange(3)),
                dynamic_shapes=({0: Dim("batch", min=2, max=64)}, None))
    path = tmp_path_factory.mktemp("cli") / "net.pt2"
    torch.export.save(ep, str(path))
    return model, path


def test_inspect(model_file):
    _, path = model_file
    out = run_cli("inspect", path).stdout
    assert "x: float32[s" in out and "in [2, 64]" in out
    assert "ids: int64[3]" in out
    assert "aten.addmm.default" in out and "supported" in out
    assert "support: " in out and "(100.0%)" in out
    assert "graph(" in out and "return (" in out


def test_run_with_npy_inputs(model_file, tmp_path):
    model, path = model_file
    x = np.random.default_rng(0).standard_normal((7, 4)).astype(np.float32)
    ids = np.array([1, 5, 9], dtype=np.int64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "ids.npy", ids)
    out_dir = tmp_path / "out"
    result = run_cli("run", path, "--input", f"x={tmp_path / 'x.npy'}", "--input", f"ids={tmp_path / 'ids.npy'}",
                     "--output-dir", out_dir)
    assert "float32[7, 3]" in result.stdout and " ms" in result.stdout
    with torch.no_grad():
        expected = model(torch.from_numpy(x), torch.from_numpy(ids))
    np.testing.assert_allclose(np.load(out_dir / "output_0.npy"), expected[0].numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(np.load(out_dir / "output_1.npy"), expected[1].numpy())


def test_run_random(model_file, tmp_path):
    _, path = model_file
    result = run_cli("run", path, "--random", "--seed", "3", "--output-dir", tmp_path)
    assert (tmp_path / "output_0.npy").exists() and (tmp_path / "output_1.npy").exists()
    first = np.load(tmp_path / "output_0.npy")
    run_cli("run", path, "--random", "--seed", "3", "--output-dir", tmp_path / "again")
    np.testing.assert_array_equal(first, np.load(tmp_path / "again" / "output_0.npy"))


@pytest.mark.parametrize("args,message", [
    (["run", "{path}"], "missing input 'x'"),
    (["run", "{path}", "--input", "x={bad_shape}", "--random"], "dim 1: expected size 4, found 5"),
    (["run", "{path}", "--input", "x={too_big}", "--random"], "expected a value in [2, 64]"),
    (["run", "{path}", "--input", "nope={bad_shape}"], "has no input 'nope'"),
    (["run", "{path}", "--input", "x={missing}"], "missing.npy"),
    (["run", "{truncated}", "--random"], "truncated"),
    (["run", "{path}", "--bogus"], "unknown option --bogus"),
    (["inspect", "{missing}"], "missing.npy"),
])
def test_errors_are_one_clear_line(model_file, tmp_path, args, message):
    _, path = model_file
    np.save(tmp_path / "bad_shape.npy", np.zeros((3, 5), np.float32))
    np.save(tmp_path / "too_big.npy", np.zeros((65, 4), np.float32))
    (tmp_path / "truncated.pt2").write_bytes(path.read_bytes()[:-100])
    names = dict(path=path, bad_shape=tmp_path / "bad_shape.npy", too_big=tmp_path / "too_big.npy",
                 missing=tmp_path / "missing.npy", truncated=tmp_path / "truncated.pt2")
    result = run_cli(*[a.format(**names) for a in args], check=False)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kiln: error:"), result.stderr
    assert message in lines[0]
