// The reference CPU backend: simple, obviously correct kernels, the oracle every other backend is
// tested against. One op family per file; each family registers its kernels here.
#pragma once

#include "ir/op_function_table.h"
#include "runtime/backend.h"

namespace kiln::cpu {

// The process-wide CPU backend, built on first use (thread-safe).
const Backend& cpu_backend();
// A duplicate registration in the kernel table is a kiln bug; this reports it.
const Status& cpu_backend_status();

Status register_elementwise_kernels(ir::OpFunctionTable& table);
Status register_reduction_kernels(ir::OpFunctionTable& table);
Status register_linalg_kernels(ir::OpFunctionTable& table);
Status register_normalization_kernels(ir::OpFunctionTable& table);
Status register_pooling_kernels(ir::OpFunctionTable& table);
Status register_shape_op_kernels(ir::OpFunctionTable& table);
Status register_indexing_kernels(ir::OpFunctionTable& table);
Status register_factory_kernels(ir::OpFunctionTable& table);
Status register_resize_kernels(ir::OpFunctionTable& table);
Status register_grid_sampler_kernels(ir::OpFunctionTable& table);  // grid_sampler_2d
// rand, randn, randperm, native_dropout: one generator per process.
Status register_random_kernels(ir::OpFunctionTable& table);
Status register_attention_kernels(ir::OpFunctionTable& table);  // scaled_dot_product_attention
Status register_sorting_kernels(ir::OpFunctionTable& table);    // sort, topk
Status register_distance_kernels(ir::OpFunctionTable& table);   // _pdist_forward, _cdist_forward
Status register_spectral_kernels(ir::OpFunctionTable& table);   // _fft_r2c, _fft_c2r, _fft_c2c

}  // namespace kiln::cpu
