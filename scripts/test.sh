#!/usr/bin/env bash
# Runs every test: the C++ units (GoogleTest under ctest, built with AddressSanitizer and UBSan), the
# Python suite (pytest, CPU torch) against the installed package, and the op conformance harness
# (tests/conformance; its full sweep is scripts/op_coverage.py). GPU tests are skipped here
# (they run on the GPU machine through scripts/gpu_check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${KILN_JOBS:-$(nproc)}

echo "== C++ units (asan preset)"
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$JOBS"
ctest --preset asan -j "$JOBS"

echo "== Python suite"
# Rebuilds the extension if sources changed since the editable install.
python3 -m pip install -q --no-build-isolation -e .
python3 -m pytest -q tests/python "$@"

echo "== Op conformance (Core ATen on OpInfo samples, CI's sample budget, against the baseline)"
python3 -m pytest -q tests/conformance
