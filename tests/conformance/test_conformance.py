"""Op conformance on the reference backend, at CI's sample budget, against the committed baseline.

    python3 -m pytest tests/conformance -q                     # every op x dtype (a few minutes)
    python3 -m pytest tests/conformance -q -k "amax or sort"   # some ops: only those run

One test per (op, dtype), named ``test_op[aten.amax.default/float32]``. The sweep itself runs
once per session, in worker processes, for exactly the (op, dtype) pairs collected, so a ``-k``
selection costs only its own samples (and one OpInfo scan per dtype it touches). A test fails
when its (op, dtype) regresses against baseline_reference.json (report.is_regression): it passed
there and does not now, or kiln now gives a wrong result where it did not. Everything else (a
known failure, an unsupported op, no samples) passes, with the status in the test's report.

The full sweep and the report are ``scripts/op_coverage.py``; after a deliberate change, refresh
the baseline with ``python3 scripts/op_coverage.py --device cpu --update-baseline``.
"""
from __future__ import annotations

import importlib.util

import pytest

from conformance import ops, report, samples, sweep

DEVICE = "cpu"

_MISSING = [name for name in ("torch.testing._internal.common_methods_invocations", "kiln")
            if importlib.util.find_spec(name.split(".")[0]) is None
            or (name.startswith("torch.") and importlib.util.find_spec(name) is None)]

pytestmark = pytest.mark.skipif(bool(_MISSING), reason=f"needs {', '.join(_MISSING)}")


def _cases() -> list:
    if _MISSING:
        return []
    return [pytest.param(op, dtype, id=f"{op}/{dtype}")
            for op in ops.op_names() for dtype in samples.DTYPES]


@pytest.fixture(scope="session")
def baseline() -> dict:
    found = report.load_json(report.BASELINE_PATHS[DEVICE])
    return found["statuses"] if found else {}


@pytest.fixture(scope="session")
def sweep_results(request) -> dict:
    """The CI-budget sweep over the (op, dtype) pairs this session collected."""
    selected = frozenset(
        (item.callspec.params["op"], item.callspec.params["dtype"])
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_op" and hasattr(item, "callspec"))
    dtypes = tuple(d for d in samples.DTYPES if any(dtype == d for _, dtype in selected))
    config = sweep.SweepConfig(device=DEVICE, dtypes=dtypes,
                               ops=tuple(sorted({op for op, _ in selected})), only=selected)
    try:
        return sweep.run_sweep(config)
    except sweep.SamplesUnavailable as error:
        pytest.skip(f"no OpInfo samples: {error}")


def test_core_aten_count_matches_native_functions():
    """The op list is read from the ops' tags; native_functions.yaml, read separately, agrees."""
    from_yaml = ops.core_count_in_native_functions()
    if from_yaml is None:
        pytest.skip("torchgen's native_functions.yaml (or PyYAML) is not installed")
    assert len(ops.core_aten_overloads()) == from_yaml


@pytest.mark.parametrize("op, dtype", _cases())
def test_op(op: str, dtype: str, sweep_results: dict, baseline: dict, record_property):
    verdict = sweep_results["ops"][op]["dtypes"][dtype]
    was = baseline.get(op, {}).get(dtype)
    record_property("status", verdict["status"])
    if report.is_regression(was, verdict["status"]):
        lines = [f"{op} {dtype}: {was or 'not in the baseline'} -> {verdict['status']}",
                 verdict["reason"]]
        if verdict.get("repro"):
            lines += ["repro:", verdict["repro"]]
        pytest.fail("\n".join(lines), pytrace=False)
