#!/usr/bin/env bash
# Regenerates src/format/engine_generated.h from src/format/engine.fbs.
#
# Made with flatc 2.0.8 (Debian's flatbuffers-compiler, which matches the libflatbuffers-dev
# headers kiln compiles against: the generated header checks that the versions agree). Use the
# same version, or regenerate with the flatc that matches your headers.
set -euo pipefail
cd "$(dirname "$0")/.."

FLATC="${FLATC:-flatc}"
if ! command -v "$FLATC" >/dev/null; then
  echo "gen_engine_format.sh: flatc not found (apt-get install flatbuffers-compiler)" >&2
  exit 1
fi
echo "using $("$FLATC" --version)"
# --scoped-enums: enum classes; --gen-mutable: in-place setters (the writer records the file size
# after finishing the buffer, and the tests tamper with engines).
"$FLATC" --cpp --scoped-enums --gen-mutable --cpp-std c++17 \
  -o src/format src/format/engine.fbs
