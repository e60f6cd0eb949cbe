"""kiln's op conformance harness: every Core ATen overload (and every op kiln keeps whole), on
PyTorch's OpInfo samples, compiled alone by kiln and compared with eager.

    python3 -m pytest tests/conformance -q                    # CI: the sample budget, vs. baseline
    python3 scripts/op_coverage.py --device cpu --full --write-report   # the full sweep + report
    python3 scripts/op_coverage.py --device cuda --write-report        # on the GPU machine

Modules, in the order data flows:

- ``ops``: the op list, read from the installed torch's ``core`` tags plus
  ``kiln._lowering.kept_whole_ops()``.
- ``opinfo_scan``: records the aten calls PyTorch's OpInfo samples make, per dtype.
- ``samples``: what a sample is, its edge-case features, derived NaN/inf / strided / integer
  extreme variants, and the budget that picks a few per (op, dtype).
- ``harness``: a module per batch of samples, torch.export, kiln.compile, run, classify.
- ``compare``: tolerances per dtype, NaN/inf, properties of random outputs.
- ``repro``: a standalone script per failing sample.
- ``sweep``: runs it all in worker processes (crash-isolated) into a results document.
- ``report``: results files, the committed baseline and docs/op-coverage.md.
"""
