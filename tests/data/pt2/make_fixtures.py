"""Writes the small .pt2 archives the C++ reader tests use (committed; rerun to regenerate).

    python3 tests/data/pt2/make_fixtures.py
"""
import io
import os
import zipfile

import torch
import torch.nn as nn
from torch.export import Dim

HERE = os.path.dirname(os.path.abspath(__file__))


class Linear(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.fc.weight.copy_(torch.arange(12.0).reshape(3, 4) / 10)
            self.fc.bias.copy_(torch.tensor([0.5, -1.0, 0.0]))

    def forward(self, x):
        return torch.relu(self.fc(x)), x.shape[0] * 2


def save(ep, name):
    buffer = io.BytesIO()
    torch.export.save(ep, buffer)
    data = buffer.getvalue()  # as torch wrote it: entries 64-byte aligned, used in place
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)
    return data


def rewrite(data, edit, compression=zipfile.ZIP_STORED):
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as target:
        for info in source.infolist():
            content = edit(info.filename, source.read(info.filename))
            if content is not None:
                target.writestr(info.filename, content)
    return out.getvalue()


def main():
    ep = torch.export.export(Linear().eval(), (torch.randn(5, 4),),
                             dynamic_shapes=({0: Dim("batch", min=2, max=64)},)).run_decompositions()
    good = save(ep, "linear.pt2")
    variants = {
        "linear_deflated.pt2": rewrite(good, lambda n, b: b, zipfile.ZIP_DEFLATED),
        "truncated.pt2": good[: len(good) // 2],
        "bad_json.pt2": rewrite(good, lambda n, b: b[:100] if n.endswith("models/model.json") else b),
        "missing_weight.pt2": rewrite(good, lambda n, b: None if n.endswith("weights/weight_0") else b),
        "short_weight.pt2": rewrite(good, lambda n, b: b[:8] if n.endswith("weights/weight_0") else b),
        "unknown_op.pt2": rewrite(good, lambda n, b: b.replace(b"torch.ops.aten.relu.default",
                                                              b"torch.ops.aten.not_an_op.default")
                                  if n.endswith("models/model.json") else b),
    }
    for name, data in variants.items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
