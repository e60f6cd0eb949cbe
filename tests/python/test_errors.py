"""Bad archives and unsupported programs fail with a clear, typed error — never a crash."""
import io
import zipfile

import pytest
import torch
import torch.nn as nn

import kiln
from conftest import export


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return torch.relu(self.fc(x))


@pytest.fixture(scope="module")
def archive() -> bytes:
    buffer = io.BytesIO()
    torch.export.save(export(Small(), (torch.randn(2, 4),)), buffer)
    return buffer.getvalue()


def rewrite(data: bytes, edit) -> bytes:
    """Copies the archive, passing each (name, bytes) through `edit` (None drops the entry)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            content = edit(info.filename, source.read(info.filename))
            if content is not None:
                target.writestr(info.filename, content)
    return out.getvalue()


def test_valid_archive_loads(archive):
    program = kiln.Program.from_bytes(archive)
    x = torch.randn(2, 4)
    assert program(x).shape == (2, 3)


@pytest.mark.parametrize("keep", [0, 10, 100, 1000, -200, -22, -1])
def test_truncated_archive(archive, keep):
    with pytest.raises(kiln.DataLossError):
        kiln.Program.from_bytes(archive[:keep])


def test_not_a_zip():
    with pytest.raises(kiln.DataLossError, match="ZIP|zip"):
        kiln.Program.from_bytes(b"definitely not an archive" * 10)


def test_bad_json(archive):
    bad = rewrite(archive, lambda name, b: b[: len(b) // 2] if name.endswith("models/model.json") else b)
    with pytest.raises(kiln.DataLossError, match="invalid JSON"):
        kiln.Program.from_bytes(bad)


def test_json_with_wrong_schema(archive):
    bad = rewrite(archive, lambda name, b: b'{"graph_module": {"graph": []}}'
                  if name.endswith("models/model.json") else b)
    with pytest.raises(kiln.KilnError):
        kiln.Program.from_bytes(bad)


def test_missing_weight(archive):
    bad = rewrite(archive, lambda name, b: None if name.endswith("data/weights/weight_0") else b)
    with pytest.raises(kiln.DataLossError, match="weight_0"):
        kiln.Program.from_bytes(bad)


def test_weight_too_small(archive):
    bad = rewrite(archive, lambda name, b: b[:8] if name.endswith("data/weights/weight_0") else b)
    with pytest.raises(kiln.DataLossError, match="bytes of storage, found 8"):
        kiln.Program.from_bytes(bad)


def test_old_archive_format():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/serialized_exported_program.json", "{}")
        z.writestr("archive/serialized_state_dict.pt", b"\x80\x02")
    with pytest.raises(kiln.UnsupportedError, match="PyTorch 2.9"):
        kiln.Program.from_bytes(out.getvalue())


def test_unknown_op_names_its_node():
    lib = torch.library.Library("kiln_test", "DEF")
    lib.define("twice(Tensor x) -> Tensor")
    lib.impl("twice", lambda x: x * 2, "CompositeExplicitAutograd")

    @torch.library.register_fake("kiln_test::twice", lib=lib)
    def _(x):
        return torch.empty_like(x)

    class UsesCustomOp(nn.Module):
        def forward(self, x):
            return torch.ops.kiln_test.twice(x) + 1

    ep = export(UsesCustomOp(), (torch.randn(3),))
    with pytest.raises(kiln.UnsupportedError, match=r"node 'twice' calls torch.ops.kiln_test.twice.default"):
        kiln.Program.from_exported_program(ep)


def test_op_without_kernel_lists_its_nodes():
    class Uniques(nn.Module):  # unique's output shape depends on the data: kiln declines it
        def forward(self, x):
            return torch.unique(x), torch.unique(x * 2)

    program = kiln.Program.from_exported_program(export(Uniques(), (torch.randn(5),)))
    assert any(line.startswith("aten._unique2.default (2 nodes") for line in program.unsupported_ops)
    with pytest.raises(kiln.UnsupportedError,
                       match=r"aten._unique2.default \(2 nodes: _unique2, _unique2_1\)"):
        program(torch.randn(5))


def test_buffer_mutation_is_named():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("count", torch.zeros(1))

        def forward(self, x):
            self.count.add_(1)
            return x + self.count

    ep = torch.export.export(Counter(), (torch.randn(3),)).run_decompositions()
    with pytest.raises(kiln.UnsupportedError, match="mutates buffer 'count'"):
        kiln.Program.from_exported_program(ep)


def test_input_mutation_is_refused_where_no_module_carries_it_out():
    class AddsInPlace(nn.Module):
        def forward(self, x, y):
            x.add_(y)
            return x * 2

    ep = torch.export.export(AddsInPlace(), (torch.randn(3), torch.randn(3))).run_decompositions()
    with pytest.raises(kiln.UnsupportedError,
                       match="'user_input_mutation' are not supported in an engine that runs on "
                             "its own"):
        kiln.Program.from_exported_program(ep)


def test_non_tensor_input_is_rejected(archive):
    program = kiln.Program.from_bytes(archive)
    with pytest.raises((kiln.InvalidArgumentError, TypeError)):
        program.run(["not a tensor"])


# --- torch's machinery failing inside kiln.compile ---------------------------------------------

class Resizes(nn.Module):
    def forward(self, x):
        return torch.ops.aten.resize_.default(x, [25, 5])


def test_lowering_failure_names_the_resizing_op_and_keeps_torchs_error():
    x = torch.randn(5, 5, 5)
    ep = torch.export.export(Resizes(), (x.clone(),))
    with pytest.raises(kiln.UnsupportedError) as error:
        kiln.compile(ep, inputs=[x], min_block_size=1, require_full_compilation=True)
    message = str(error.value)
    assert message.startswith("lowering failed in torch's run_decompositions ("), message
    assert "aten.resize_.default (1 node: resize_): resizes its input in place" in message
    assert error.value.__cause__ is not None
    assert not isinstance(error.value.__cause__, kiln.KilnError)


def test_lowering_failure_without_an_in_place_op_is_a_lowering_error(monkeypatch):
    ep = export(Small(), (torch.randn(2, 4),), decompose=False)

    def fails(self, *args, **kwargs):
        raise RuntimeError("torch broke")

    monkeypatch.setattr(torch.export.ExportedProgram, "run_decompositions", fails)
    with pytest.raises(kiln.LoweringError, match=r"run_decompositions \(RuntimeError: torch broke"
                       ) as error:
        kiln.compile(ep, inputs=[torch.randn(2, 4)])
    assert not isinstance(error.value, kiln.UnsupportedError)
    assert str(error.value.__cause__) == "torch broke"


class ReturnsBoolItem(nn.Module):
    def forward(self, x):
        return torch.ops.aten._local_scalar_dense.default(x)


def test_symbolic_bool_output_is_declined_by_name():
    x = torch.tensor(True)
    ep = torch.export.export(ReturnsBoolItem(), (x,))
    with pytest.raises(kiln.UnsupportedError) as error:
        kiln.compile(ep, inputs=[x], min_block_size=1, require_full_compilation=True)
    message = str(error.value)
    assert "torch.export.save cannot write the lowered program" in message
    assert ("aten._local_scalar_dense.default (1 node: _local_scalar_dense): returns a symbolic "
            "bool as a program output") in message
    assert error.value.__cause__ is not None
    # Without require_full_compilation the program runs in PyTorch, as any it cannot take.
    with pytest.warns(UserWarning, match="returning the program unchanged"):
        compiled = kiln.compile(ep, inputs=[x], min_block_size=1)
    assert compiled(x) is True and compiled(torch.tensor(False)) is False
