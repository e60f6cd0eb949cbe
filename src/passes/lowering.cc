#include "passes/lowering.h"

#include <functional>

#include "ir/verifier.h"
#include "passes/batch_norm_folding.h"
#include "passes/dead_code_elimination.h"
#include "passes/no_op_removal.h"
#include "passes/program_edit.h"

namespace kiln::passes {
namespace {

Status verify_program(const ir::Program& program) {
  KILN_RETURN_IF_ERROR(ir::verify(program.graph));
  return ir::check_inference(program);
}

}  // namespace

Status run_lowering_passes(ir::Program& program, const LoweringOptions& options) {
  if (Status status = verify_program(program); !status.ok()) {
    return invalid_argument("the program to lower does not verify: ", status.message());
  }
  struct Pass {
    const char* name;
    bool enabled;
    std::function<Result<int>()> run;
  };
  std::vector<std::string>* log = options.log;
  const Pass passes[] = {
      {"dead_code_elimination", options.eliminate_dead_code,
       [&] { return eliminate_dead_code(program, log); }},
      {"no_op_removal", options.remove_no_ops, [&] { return remove_no_ops(program, log); }},
      {"constant_folding", options.fold_constants,
       [&] { return fold_constants(program, options.constant_folding, log); }},
      {"batch_norm_folding", options.fold_batch_norms,
       [&] { return fold_batch_norms(program, log); }},
  };
  for (int round = 0; round < options.max_rounds; ++round) {
    int round_changes = 0;
    for (const Pass& pass : passes) {
      if (!pass.enabled) continue;
      KILN_ASSIGN_OR_RETURN(int changes, pass.run(), "in lowering pass ", pass.name);
      if (changes == 0) continue;
      round_changes += changes;
      if (Status status = verify_program(program); !status.ok()) {
        return internal_error("lowering pass ", pass.name,
                              " left an invalid program: ", status.message());
      }
    }
    if (round_changes == 0) return ok_status();
  }
  log_change(log, "lowering: stopped after ", options.max_rounds,
             " rounds that all changed something");
  return ok_status();
}

}  // namespace kiln::passes
