// Batch-norm folding: an inference batch norm whose input is a convolution or linear layer with
// constant weights, read by nothing else, is folded into that layer's weight and bias:
//
//   scale = gamma / sqrt(var + eps)      w' = w * scale (per output channel)
//   b' = (b - mean) * scale + beta       (b = 0 when the layer has no bias)
//
// computed in double precision from the stored values and rounded once to the layer's weight dtype
// (the bias to its own dtype, or the weight's when the layer had no bias). The new weight and bias
// are constants named `_folded_<weight name>` and `_folded_<bias name>` (`_folded_<layer>_bias`
// when the layer had none); the batch norm's result keeps its name (the layer now produces it).
//
// Batch norms: _native_batch_norm_legit_no_training, and batch_norm / native_batch_norm with
// training=False (their statistics outputs must be unused). Layers: convolution, _convolution,
// conv1d/2d/3d (with either padding overload), conv_transpose1d/2d/3d and transposed convolutions
// (the output channel is the weight's dim 1 within each group), addmm with beta = alpha = 1, a
// constant 2-D mat2 and a 1-D bias, and linear with a 2-D output.
#pragma once

#include <string>
#include <vector>

#include "ir/program.h"

namespace kiln::passes {

// Returns how many batch norms it folded (0: unchanged); appends one line per fold to `log` when
// not null. Invalidates pointers to the program's Nodes and Values.
Result<int> fold_batch_norms(ir::Program& program, std::vector<std::string>* log = nullptr);

}  // namespace kiln::passes
