#!/usr/bin/env bash
# Sets kiln up on a fresh Debian machine: system packages, Python packages, the build, and a first run
# of the built-in example. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq cmake ninja-build g++ libgtest-dev zlib1g-dev libflatbuffers-dev flatbuffers-compiler >/dev/null
fi

python3 -m pip install -q --upgrade pip
# torch/torchvision/transformers at the versions the GPU machine has; the rest build and test kiln.
python3 -m pip install -q -r requirements-dev.txt
# The core and the binding are C++: build them into the package (editable, so tests see changes).
python3 -m pip install -q --no-build-isolation -e .

python3 examples/quickstart.py
