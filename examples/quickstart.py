"""kiln in one minute: export a small model with torch, compile it with kiln, compare with PyTorch.

    python3 examples/quickstart.py
"""
import time

import torch
import torch.nn as nn

import kiln


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1)).softmax(-1)


def main():
    torch.manual_seed(0)
    model = SmallCnn().eval()
    x = torch.randn(4, 3, 64, 64)
    exported = torch.export.export(model, (x,))
    start = time.perf_counter()
    compiled = kiln.compile(exported, inputs=[x])
    compile_s = time.perf_counter() - start
    compiled(x)  # warm-up
    start = time.perf_counter()
    y = compiled(x)
    run_ms = (time.perf_counter() - start) * 1e3
    with torch.no_grad():
        expected = model(x)
    err = (y - expected).abs().max().item()
    engines = [m for m in compiled.modules() if isinstance(m, kiln.KilnEngineModule)]
    print(f"kiln {kiln.__version__}: compiled into {len(engines)} engine(s) in {compile_s:.2f} s")
    print(f"ran on the cpu reference backend in {run_ms:.2f} ms")
    print(f"max abs error vs PyTorch eager: {err:.3g}")
    if not torch.allclose(y, expected, rtol=1e-4, atol=1e-4):
        raise SystemExit("kiln's result does not match PyTorch")


if __name__ == "__main__":
    main()
