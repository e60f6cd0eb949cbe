// Shape and dtype inference: one function per supported op that computes the node's outputs
// (meta tensors, or the values of symbolic ints) from its inputs. Every backend uses the same
// inference; the verifier checks it against what the program records.
#pragma once

#include "ir/op_function_table.h"

namespace kiln::ir {

// All of kiln's inference functions, built on first use (thread-safe). A build error in the table
// (a duplicate registration) is a kiln bug and is reported by shape_inference_status().
const OpFunctionTable& shape_inference_table();
const Status& shape_inference_status();

// complex64 values are read and produced by the spectral ops (_fft_r2c, _fft_c2r, _fft_c2c)
// alone: for any other node with such a value, an unsupported error naming it (the node is
// declined and runs in PyTorch, as inference would otherwise type it as a real op would).
Status check_complex_values(const Node& node);
bool takes_complex(OpKey op);  // the spectral ops

// One registration function per op family (src/ir/infer/<family>.cc).
Status register_symbolic_inference(OpFunctionTable& table);  // sym_size, _operator.*, torch.sym_*
Status register_elementwise_inference(OpFunctionTable& table);  // unary, binary, where, clamp, ...
Status register_reduction_inference(OpFunctionTable& table);    // sum, mean, amax, any, cumsum, ...
Status register_linalg_inference(OpFunctionTable& table);       // mm, addmm, bmm, convolution
Status register_normalization_inference(OpFunctionTable& table);  // softmax, layer/batch norm
Status register_pooling_inference(OpFunctionTable& table);        // max/avg pool, adaptive pool
Status register_shape_op_inference(OpFunctionTable& table);       // view, permute, expand, cat, ...
Status register_indexing_inference(OpFunctionTable& table);       // embedding, gather, index, ...
Status register_factory_inference(OpFunctionTable& table);  // full, arange, scalar_tensor, ...
Status register_resize_inference(OpFunctionTable& table);   // upsample nearest / (bi)linear
Status register_attention_inference(OpFunctionTable& table);  // scaled_dot_product_attention
Status register_sorting_inference(OpFunctionTable& table);    // sort (default, stable), topk
Status register_spectral_inference(OpFunctionTable& table);   // _fft_r2c, _fft_c2r, _fft_c2c

}  // namespace kiln::ir
