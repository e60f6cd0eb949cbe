// The lowering pipeline run on each accelerated segment's standalone program before it becomes an
// engine (Torch-TensorRT's post-lowering passes, on kiln's IR).
//
// Rounds of: dead code elimination, no-op removal, constant folding, batch-norm folding, until a
// round changes nothing (each pass can expose work for the others: folding a transposed weight lets
// a batch norm fold into the addmm that reads it; every fold leaves weights for dead code
// elimination). After each pass that changed something the program is verified structurally and
// against shape inference; a failure there is a kiln bug and is reported as Internal, naming the
// pass.
#pragma once

#include <string>
#include <vector>

#include "ir/program.h"
#include "passes/constant_folding.h"

namespace kiln::passes {

struct LoweringOptions {
  bool eliminate_dead_code = true;
  bool remove_no_ops = true;
  bool fold_constants = true;
  bool fold_batch_norms = true;
  ConstantFoldingOptions constant_folding;
  // Rounds before giving up on a fixed point (not an error: the program is valid after each one).
  int max_rounds = 8;
  // When not null, receives one line per change any pass made, for debug logging. The caller owns
  // it; it must outlive the call.
  std::vector<std::string>* log = nullptr;
};

// Lowers `program` in place. The program must verify on entry (kInvalidArgument otherwise).
// Pointers into its graph are invalidated. Not thread-safe on the same program; different programs
// may be lowered concurrently.
Status run_lowering_passes(ir::Program& program, const LoweringOptions& options = {});

}  // namespace kiln::passes
