#!/usr/bin/env bash
# The one command for the GPU machine: builds kiln with its CUDA backend, runs the C++ units (the
# CUDA ones included) and the GPU tests, and optionally the benchmark. Every session runs this.
#
#   bash scripts/gpu_check.sh [--bench [bench args...]] [--only-bench] [--pytest-args "..."]
#                             [--profile "gpt2:32 vit_b_16:32"]   (per-step times, after the tests)
#                             [--first-call "resnet50:32 gpt2:32"]   (a new process's load and
#                                 first call, phase by phase: bench/first_call.py)
#                             [--no-tests]   (build, then only what --bench/--profile ask for)
#                             [--conformance "sweep args"]   (the CUDA op-conformance sweep,
#                                 e.g. "--dtypes float32,float16"; results and baseline to $OUT)
#
# The GPU machine has no package registry and no Debian -dev packages: headers it lacks
# (FlatBuffers, GoogleTest, cudnn-frontend, cuDNN) travel in .carry/ (made here by
# scripts/make_gpu_carry.sh). Logs go to $OUT when set (the device tool's output folder).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/kiln-gpu-out}
mkdir -p "$OUT"
BENCH=0; ONLY_BENCH=0; NO_TESTS=0; BENCH_ARGS=(); PYTEST_ARGS=(); PROFILE_CASES=()
CONFORMANCE=0; CONFORMANCE_ARGS=(); FIRST_CALL_CASES=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bench) BENCH=1; shift; while [ $# -gt 0 ] && [[ "$1" != --only-bench && "$1" != --pytest-args && "$1" != --profile && "$1" != --no-tests && "$1" != --conformance && "$1" != --first-call ]]; do BENCH_ARGS+=("$1"); shift; done ;;
    --conformance) CONFORMANCE=1; read -r -a CONFORMANCE_ARGS <<< "$2"; shift 2 ;;
    --profile) read -r -a PROFILE_CASES <<< "$2"; shift 2 ;;
    --first-call) read -r -a FIRST_CALL_CASES <<< "$2"; shift 2 ;;
    --only-bench) ONLY_BENCH=1; BENCH=1; NO_TESTS=1; shift ;;
    --no-tests) NO_TESTS=1; shift ;;
    --pytest-args) read -r -a PYTEST_ARGS <<< "$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

CARRY="$PWD/.carry"
# The GPU machine's compiler (/opt/gcc) is newer than the libstdc++ that Python and torch load
# first; kiln's extension needs the compiler's own libstdc++ (backward compatible with the older
# one), so preload it for every Python run here.
CXX_LIBSTDCXX=$(g++ -print-file-name=libstdc++.so.6)
if [ -f "$CXX_LIBSTDCXX" ] && [ "$(readlink -f "$CXX_LIBSTDCXX")" != "$(readlink -f /lib/x86_64-linux-gnu/libstdc++.so.6 2>/dev/null)" ]; then
  export LD_PRELOAD="$CXX_LIBSTDCXX${LD_PRELOAD:+:$LD_PRELOAD}"
  echo "preloading $CXX_LIBSTDCXX"
fi
export PYTHONUNBUFFERED=1
export CMAKE_ARGS="-DKILN_FLATBUFFERS_INCLUDE_DIR=$CARRY/include -DKILN_CUDNN_FRONTEND_INCLUDE_DIR=$CARRY/include -DKILN_CUDNN_INCLUDE_DIR=$CARRY/include -DGTEST_ROOT=$CARRY"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, torch.version.cuda, torch.cuda.get_device_name())"

echo "== build (editable install; also builds the C++ units)"
start=$(date +%s)
python3 -m pip install -q --no-build-isolation --no-deps -C build-dir=build/gpu \
  -C cmake.define.KILN_BUILD_TESTS=ON -e . 2>&1 | tail -40
echo "build took $(( $(date +%s) - start )) s"

if [ "$NO_TESTS" = 0 ] && [ "${KILN_SKIP_CTEST:-0}" = 0 ]; then
  echo "== C++ units"
  set +e
  (cd build/gpu && ctest -j 8 --output-on-failure --timeout 300 > "$OUT/ctest.txt" 2>&1; \
   grep -E "tests passed|tests failed|Failed|\*\*\*" "$OUT/ctest.txt" | head -60)
fi
if [ "$NO_TESTS" = 0 ]; then
  set +e
  echo "== GPU tests (pytest tests/gpu)"
  [ ${#PYTEST_ARGS[@]} -eq 0 ] && PYTEST_ARGS=(tests/gpu)
  python3 -m pytest -q -rs "${PYTEST_ARGS[@]}" 2>&1 | tee "$OUT/pytest-gpu.txt" | tail -80
  set -e
fi

if [ "$CONFORMANCE" = 1 ]; then
  echo "== op conformance on the CUDA backend (scripts/op_coverage.py)"
  set +e
  python3 scripts/op_coverage.py --device cuda --workers 12 --results "$OUT/results_cuda.json" \
    "${CONFORMANCE_ARGS[@]}" > "$OUT/conformance.txt" 2>&1
  echo "conformance exit $?"
  grep -v Warning "$OUT/conformance.txt" | tail -40
  set -e
fi

if [ ${#FIRST_CALL_CASES[@]} -gt 0 ]; then
  echo "== a new process's load and first call (bench/first_call.py)"
  python3 bench/first_call.py "${FIRST_CALL_CASES[@]}" --processes 2 > "$OUT/first_call.txt" 2>&1 || true
  grep -v Warning "$OUT/first_call.txt" | tail -60
fi

if [ ${#PROFILE_CASES[@]} -gt 0 ]; then
  echo "== per-step profile (bench/profile_steps.py)"
  python3 bench/profile_steps.py "${PROFILE_CASES[@]}" > "$OUT/profile.txt" 2>&1 || true
  grep -v Warning "$OUT/profile.txt" | tail -150
fi

if [ "$BENCH" = 1 ]; then
  echo "== benchmark"
  python3 bench/cuda_models.py --all --out-dir "$OUT" "${BENCH_ARGS[@]}" 2>&1 | tee "$OUT/bench.txt" | tail -60
fi
