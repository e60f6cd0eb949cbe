#!/usr/bin/env bash
# Collects into .carry/ (git-ignored) the headers and static libraries the GPU machine lacks, for
# scripts/gpu_check.sh: FlatBuffers, GoogleTest, the cudnn-frontend headers (PyPI
# nvidia-cudnn-frontend) and cuDNN's headers. Run here before sending the tree to the GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.carry/' .git/info/exclude 2>/dev/null || echo '/.carry/' >> .git/info/exclude
rm -rf .carry && mkdir -p .carry/include .carry/lib
cp -r /usr/include/flatbuffers /usr/include/gtest /usr/include/gmock .carry/include/
cp /usr/lib/x86_64-linux-gnu/libgtest*.a /usr/lib/x86_64-linux-gnu/libgmock*.a .carry/lib/
# pip installs the headers under <prefix>/include or <site-packages>/include.
FRONTEND=$(python3 - <<'PY'
import os, sysconfig
for base in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["data"]):
    if os.path.exists(os.path.join(base, "include", "cudnn_frontend.h")):
        print(os.path.join(base, "include"))
        break
PY
)
if [ -z "$FRONTEND" ]; then
  echo "cudnn_frontend.h not found: pip install nvidia-cudnn-frontend" >&2; exit 1
fi
cp -r "$FRONTEND"/cudnn_frontend* "$FRONTEND"/cudnn_backend_base.h .carry/include/
CUDNN_H=$(dirname "$(find /usr/local/cuda/include /usr/include -maxdepth 1 -name cudnn.h | head -1)")
cp "$CUDNN_H"/cudnn*.h .carry/include/
du -sh .carry
