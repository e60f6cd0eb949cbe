#include "cuda/pointwise_codegen.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>

#include "base/hash.h"
#include "cuda/pointwise_expression.h"

namespace kiln::cuda {
namespace {

using ir::OpKey;

// Wraps an opmath value into what a value of `dtype` holds (integers wrap, bools normalize).
std::string round_trip(const std::string& expr, DType dtype) {
  switch (dtype) {
    case DType::kInt32: return str_cat("((i64)(int)(", expr, "))");
    case DType::kInt16: return str_cat("((i64)(short)(", expr, "))");
    case DType::kInt8: return str_cat("((i64)(signed char)(", expr, "))");
    case DType::kUInt8: return str_cat("((i64)(unsigned char)(", expr, "))");
    default: return expr;
  }
}

// The opmath value of `element`, an element of `dtype` as stored.
std::string loaded(const std::string& element, DType dtype) {
  switch (dtype) {
    case DType::kFloat16:
    case DType::kBFloat16: return str_cat("to_float(", element, ")");
    case DType::kFloat32:
    case DType::kFloat64:
    case DType::kBool: return element;
    default: return str_cat("((i64)", element, ")");
  }
}

// The opmath `value` as an element of `dtype`.
std::string stored(const std::string& value, DType dtype) {
  const std::string type(device_type_name(dtype));
  switch (dtype) {
    case DType::kFloat16:
    case DType::kBFloat16: return str_cat("from_float<", type, ">(", value, ")");
    default: return str_cat("(", type, ")(", value, ")");
  }
}

std::string element_ref(std::string_view pointer, std::string_view offset, DType dtype) {
  return str_cat("ktensor_ptr<", device_type_name(dtype), ">(", pointer, ")[", offset, "]");
}

std::string indented(const std::string& lines, std::string_view by) {
  std::string out;
  size_t start = 0;
  while (start < lines.size()) {
    size_t end = lines.find('\n', start);
    if (end == std::string::npos) end = lines.size() - 1;
    out += str_cat(by, std::string_view(lines).substr(start, end - start + 1));
    start = end + 1;
  }
  return out;
}

// Packets: a thread's run of consecutive elements, moved with one access per operand when the
// packet is whole and every operand's part of it is aligned to its size (at most 16 bytes), else
// element by element (lanes past the packet's end repeat its first element and are not stored).
// Used by every group's _vec and _rows kernels.
constexpr std::string_view kPacketKey = "kiln_pw_packet";
constexpr std::string_view kPacketCode = R"(template <int Bytes> struct kiln_pw_raw;
template <> struct kiln_pw_raw<1> { typedef unsigned char type; };
template <> struct kiln_pw_raw<2> { typedef unsigned short type; };
template <> struct kiln_pw_raw<4> { typedef unsigned int type; };
template <> struct kiln_pw_raw<8> { typedef uint2 type; };
template <> struct kiln_pw_raw<16> { typedef uint4 type; };
template <typename T, int N> union kiln_pw_packet {
  typename kiln_pw_raw<sizeof(T) * N>::type raw;
  T v[N];
};
template <typename T, int N> __device__ __forceinline__ bool kiln_pw_aligned(const T* p) {
  return ((u64)p & (sizeof(T) * N - 1)) == 0;
}
// The packet at p: every lane p[0] when `broadcast`, one access when `whole`, else p[0, n).
template <typename T, int N>
__device__ __forceinline__ kiln_pw_packet<T, N> kiln_pw_load(const T* p, bool broadcast,
                                                             bool whole, int n) {
  kiln_pw_packet<T, N> r;
  if (broadcast) {
    const T e = p[0];
#pragma unroll
    for (int j = 0; j < N; ++j) r.v[j] = e;
  } else if (whole) {
    r.raw = *reinterpret_cast<const typename kiln_pw_raw<sizeof(T) * N>::type*>(p);
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) r.v[j] = p[j < n ? j : 0];
  }
  return r;
}
template <typename T, int N>
__device__ __forceinline__ void kiln_pw_store(T* p, const kiln_pw_packet<T, N>& r, bool whole,
                                              int n) {
  if (whole) {
    *reinterpret_cast<typename kiln_pw_raw<sizeof(T) * N>::type*>(p) = r.raw;
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) {
      if (j < n) p[j] = r.v[j];
    }
  }
}
)";

// What every kernel of a group shares: its parameters, its operands' dtypes and the
// computation of one element (statements over x<k>, the inputs' opmath values, defining the
// variables the outputs store).
struct GroupCode {
  std::string params;
  std::vector<DType> inputs, outputs;
  std::vector<std::string> stored;  // the variable output k stores
  std::string compute;
};

Result<GroupCode> group_code(const PointwiseGroup& group) {
  GroupCode code;
  Emitter e;
  auto add_param = [&](const std::string& p) {
    code.params += str_cat(code.params.empty() ? "" : ", ", p);
  };
  for (size_t k = 0; k < group.inputs.size(); ++k) {
    add_param(str_cat("KTensor in", k));
    code.inputs.push_back(group.inputs[k]->dtype);
    e.name(group.inputs[k]->id, str_cat("x", k));
  }
  for (const ir::Node* node : group.nodes) {
    std::string why;
    auto expr = node_expression(*node, e, &why);
    if (!expr) {
      return unsupported("no CUDA pointwise code for node '", node->name, "' (",
                         ir::op_name(node->op), "): ", why);
    }
    const ir::Value* out = node->outputs[0];
    const std::string var = str_cat("v", out->id);
    code.compute += str_cat("const ", opmath(out->dtype), " ", var, " = ",
                            round_trip(*expr, out->dtype), ";\n");
    e.name(out->id, var);
  }
  for (size_t k = 0; k < group.outputs.size(); ++k) {
    // Only a node's first output has an expression (batch norm's saved statistics are stored by
    // a step of their own, make_batch_norm_stats_step).
    const ir::Node* producer = group.outputs[k]->producer;
    if (!producer || producer->outputs.empty() || producer->outputs[0] != group.outputs[k]) {
      return internal_error("pointwise group stores '", group.outputs[k]->name,
                            "', which is no node's first output");
    }
    add_param(str_cat("KTensor out", k));
    code.outputs.push_back(group.outputs[k]->dtype);
    code.stored.push_back(str_cat("v", group.outputs[k]->id));
  }
  add_param("i64 numel");
  return code;
}

// Loads x<k> from in<k>[offset(k)], computes, stores out<k>[offset(k)]: one element.
template <typename InOffset, typename OutOffset>
std::string element_body(const GroupCode& code, InOffset in_offset, OutOffset out_offset) {
  std::string body;
  for (size_t k = 0; k < code.inputs.size(); ++k) {
    body += str_cat(
        "const ", opmath(code.inputs[k]), " x", k, " = ",
        loaded(element_ref(str_cat("in", k), in_offset(k), code.inputs[k]), code.inputs[k]), ";\n");
  }
  body += code.compute;
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    body += str_cat(element_ref(str_cat("out", k), out_offset(k), code.outputs[k]), " = ",
                    stored(code.stored[k], code.outputs[k]), ";\n");
  }
  return body;
}

// One packet of `packet` elements: at entry, input k's packet starts at element a<k> of in<k>
// (b<k>: one element broadcast over the packet), output k's at o<k>; the packet holds n
// elements, and `whole` says every operand may be moved with one access. Each element is
// computed by the same statements as in the scalar kernels.
std::string packet_body(const GroupCode& code, int packet) {
  std::string body, lanes;
  for (size_t k = 0; k < code.inputs.size(); ++k) {
    const std::string_view type = device_type_name(code.inputs[k]);
    const std::string pk = str_cat("kiln_pw_packet<", type, ", ", packet, ">");
    body += str_cat("const ", pk, " p", k, " = kiln_pw_load<", type, ", ", packet, ">(ktensor_ptr<",
                    type, ">(in", k, ") + a", k, ", b", k, ", whole, n);\n");
    lanes += str_cat("const ", opmath(code.inputs[k]), " x", k, " = ",
                     loaded(str_cat("p", k, ".v[j]"), code.inputs[k]), ";\n");
  }
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    body += str_cat("kiln_pw_packet<", device_type_name(code.outputs[k]), ", ", packet, "> q", k,
                    ";\n");
  }
  lanes += code.compute;
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    lanes += str_cat("q", k, ".v[j] = ", stored(code.stored[k], code.outputs[k]), ";\n");
  }
  body += str_cat("#pragma unroll\nfor (int j = 0; j < ", packet, "; ++j) {\n",
                  indented(lanes, "  "), "}\n");
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    const std::string_view type = device_type_name(code.outputs[k]);
    body += str_cat("kiln_pw_store<", type, ", ", packet, ">(ktensor_ptr<", type, ">(out", k,
                    ") + o", k, ", q", k, ", whole, n);\n");
  }
  return body;
}

// Whether operand `tensor` of `dtype`, offset by `offset` elements, is aligned to its packet.
std::string aligned_expr(const std::string& tensor, DType dtype, int packet,
                         std::string_view offset) {
  const std::string_view type = device_type_name(dtype);
  return str_cat("kiln_pw_aligned<", type, ", ", packet, ">(ktensor_ptr<", type, ">(", tensor, ")",
                 offset.empty() ? "" : " + ", offset, ")");
}

std::string kernel_head(const std::string& name, std::string_view suffix, const GroupCode& code) {
  return str_cat("extern \"C\" __global__ void __launch_bounds__(256) ", name, suffix, "(",
                 code.params, ") {\n");
}

constexpr std::string_view kElementLoop =
    "  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < numel;\n"
    "       i += (i64)gridDim.x * blockDim.x) {\n";

std::string flat_kernel(const std::string& name, const GroupCode& code) {
  const std::string body = element_body(
      code, [](size_t k) { return str_cat("(in", k, ".rank == 0 ? 0 : i)"); },
      [](size_t) { return std::string("i"); });
  return str_cat(kernel_head(name, "_flat", code), kElementLoop, indented(body, "    "),
                 "  }\n}\n");
}

// Each element walks every dim of the output's multi-index.
std::string nd_kernel(const std::string& name, const GroupCode& code, int rank) {
  std::string walk = "i64 rem = i;\n";
  for (size_t k = 0; k < code.inputs.size(); ++k) walk += str_cat("i64 a", k, " = 0;\n");
  for (size_t k = 0; k < code.outputs.size(); ++k) walk += str_cat("i64 o", k, " = 0;\n");
  walk += str_cat("#pragma unroll\nfor (int d = ", rank - 1, "; d >= 0; --d) {\n",
                  "  const i64 idx = rem % out0.sizes[d];\n", "  rem /= out0.sizes[d];\n");
  for (size_t k = 0; k < code.inputs.size(); ++k) {
    walk += str_cat("  a", k, " += idx * in", k, ".strides[d];\n");
  }
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    walk += str_cat("  o", k, " += idx * out", k, ".strides[d];\n");
  }
  walk += "}\n";
  const std::string body = element_body(
      code, [](size_t k) { return str_cat("a", k); }, [](size_t k) { return str_cat("o", k); });
  return str_cat(kernel_head(name, "_nd", code), kElementLoop, indented(walk + body, "    "),
                 "  }\n}\n");
}

// The flat walk in packets: whole packets are one access per operand when every base pointer is
// aligned (then every packet is), the last packet may be partial.
std::string vec_kernel(const std::string& name, const GroupCode& code, int packet) {
  std::string head, aligned, offsets;
  for (size_t k = 0; k < code.inputs.size(); ++k) {
    head += str_cat("const bool b", k, " = in", k, ".rank == 0;\n");
    aligned += str_cat(aligned.empty() ? "" : " &&\n    ", "(b", k, " || ",
                       aligned_expr(str_cat("in", k), code.inputs[k], packet, ""), ")");
    offsets += str_cat("const i64 a", k, " = b", k, " ? 0 : i;\n");
  }
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    aligned += str_cat(aligned.empty() ? "" : " &&\n    ",
                       aligned_expr(str_cat("out", k), code.outputs[k], packet, ""));
    offsets += str_cat("const i64 o", k, " = i;\n");
  }
  head += str_cat("const bool aligned = ", aligned, ";\n");
  head += str_cat("const i64 packets = (numel + ", packet - 1, ") / ", packet, ";\n");
  const std::string loop =
      str_cat("for (i64 p = (i64)blockIdx.x * blockDim.x + threadIdx.x; p < packets;\n",
              "     p += (i64)gridDim.x * blockDim.x) {\n");
  const std::string per_packet = str_cat(
      "const i64 i = p * ", packet, ";\n", "const int n = numel - i < ", packet,
      " ? (int)(numel - i) : ", packet, ";\n", "const bool whole = aligned && n == ", packet, ";\n",
      offsets, packet_body(code, packet));
  return str_cat(kernel_head(name, "_vec", code), indented(head + loop, "  "),
                 indented(per_packet, "    "), "  }\n}\n");
}

// Rows of the last dim in packets, for operands of rank `rank` (walks of fewer dims padded in
// front with size-1 dims): the outer dims are walked once per packet, in 32 bits (numel < 2^31),
// skipping size-1 dims; the last dim is contiguous for every output and contiguous or broadcast
// for every input. Packets are aligned or not row by row, so `whole` is decided per packet.
// Every dim index is a constant: the KTensors stay in parameter space.
std::string rows_kernel(const std::string& name, const GroupCode& code, int packet, int rank) {
  const int last = rank - 1;
  std::string head = str_cat("const unsigned cols = (unsigned)out0.sizes[", last, "];\n",
                             "const unsigned per_row = (cols + ", packet - 1, ") / ", packet, ";\n",
                             "const unsigned packets = (unsigned)(numel / cols) * per_row;\n");
  std::string offsets, walk, outermost, whole;
  for (size_t k = 0; k < code.inputs.size(); ++k) {
    head += str_cat("const bool b", k, " = in", k, ".strides[", last, "] == 0;\n");
    offsets += str_cat("i64 a", k, " = b", k, " ? 0 : c;\n");
    walk += str_cat("    a", k, " += idx * in", k, ".strides[d];\n");
    outermost += str_cat("a", k, " += row * in", k, ".strides[0];\n");
    whole += str_cat(" &&\n    (b", k, " || ",
                     aligned_expr(str_cat("in", k), code.inputs[k], packet, str_cat("a", k)), ")");
  }
  for (size_t k = 0; k < code.outputs.size(); ++k) {
    offsets += str_cat("i64 o", k, " = c;\n");
    walk += str_cat("    o", k, " += idx * out", k, ".strides[d];\n");
    outermost += str_cat("o", k, " += row * out", k, ".strides[0];\n");
    whole += str_cat(" &&\n    ",
                     aligned_expr(str_cat("out", k), code.outputs[k], packet, str_cat("o", k)));
  }
  const std::string loop =
      "for (unsigned p = blockIdx.x * blockDim.x + threadIdx.x; p < packets;\n"
      "     p += gridDim.x * blockDim.x) {\n";
  std::string per_packet = str_cat(
      "unsigned row = p / per_row;\n", "const unsigned c = (p - row * per_row) * ", packet, ";\n",
      "const int n = cols - c < ", packet, " ? (int)(cols - c) : ", packet, ";\n", offsets);
  if (rank > 1) {
    per_packet += str_cat("#pragma unroll\nfor (int d = ", rank - 2, "; d > 0; --d) {\n",
                          "  const unsigned size = (unsigned)out0.sizes[d];\n",
                          "  if (size != 1) {\n", "    const unsigned idx = row % size;\n",
                          "    row /= size;\n", walk, "  }\n}\n", outermost);
  }
  per_packet +=
      str_cat("const bool whole = n == ", packet, whole, ";\n", packet_body(code, packet));
  return str_cat(kernel_head(name, "_rows", code), indented(head + loop, "  "),
                 indented(per_packet, "    "), "  }\n}\n");
}

}  // namespace

bool is_channel_operand(const ir::Node& node, const ir::Value* value) {
  if (node.op != OpKey::aten__native_batch_norm_legit_no_training_default) return false;
  for (size_t i = 1; i <= 4; ++i) {
    if (tensor_arg(node, i) == value) return true;
  }
  return false;
}

bool reads_or_writes_float64(const ir::Node& node) {
  for (const ir::Value* v : node.outputs) {
    if (v && v->kind == ir::ValueKind::kTensor && v->dtype == DType::kFloat64) return true;
  }
  for (const ir::Value* v : node.input_values()) {
    if (v && v->kind == ir::ValueKind::kTensor && v->dtype == DType::kFloat64) return true;
  }
  return false;
}

bool pointwise_takes_float64(const ir::Node& node) {
  switch (node.op) {
    case OpKey::aten_eq_Tensor:
    case OpKey::aten_eq_Scalar:
    case OpKey::aten_ne_Tensor:
    case OpKey::aten_ne_Scalar:
    case OpKey::aten_lt_Tensor:
    case OpKey::aten_lt_Scalar:
    case OpKey::aten_le_Tensor:
    case OpKey::aten_le_Scalar:
    case OpKey::aten_gt_Tensor:
    case OpKey::aten_gt_Scalar:
    case OpKey::aten_ge_Tensor:
    case OpKey::aten_ge_Scalar:
      return true;
    case OpKey::aten__to_copy_default:
    case OpKey::aten_clone_default: {
      // The generated code narrows through float: exact for float64 -> float32, a second
      // rounding for float64 -> float16/bfloat16 (eager rounds once).
      const ir::Value* in = node.input_values().empty() ? nullptr : node.input_values()[0];
      const ir::Value* out = node.outputs.empty() ? nullptr : node.outputs[0];
      if (!in || !out) return false;
      const bool narrows_to_half = in->dtype == DType::kFloat64 &&
                                   (out->dtype == DType::kFloat16 ||
                                    out->dtype == DType::kBFloat16);
      return !narrows_to_half;
    }
    default:
      return false;
  }
}

std::string pointwise_unsupported_reason(const ir::Node& node) {
  Emitter e;
  for (const ir::Value* v : node.input_values()) {
    if (v && v->kind == ir::ValueKind::kTensor) e.name(v->id, "x");
  }
  for (const ir::Argument& arg : node.args) {
    if (std::holds_alternative<std::vector<ir::SymInt>>(arg)) continue;
    if (const ir::Value* const* v = std::get_if<ir::Value*>(&arg)) {
      if (*v && (*v)->kind != ir::ValueKind::kTensor) return "a symbolic scalar argument";
    }
  }
  if (reads_or_writes_float64(node) && !pointwise_takes_float64(node)) {
    return "float64 (the CUDA backend runs float32, float16 and bfloat16; in float64 only "
           "conversions and comparisons)";
  }
  std::string why;
  if (node_expression(node, e, &why)) return "";
  return why.empty() ? std::string("unsupported") : why;
}

std::string batch_norm_stats_kernel(ModuleSource& module, DType mean, DType var, DType out) {
  const std::string name =
      str_cat("kiln_bn_stats_", dtype_tag(mean), "_", dtype_tag(var), "_", dtype_tag(out));
  const std::string m = loaded(element_ref("mean", "c * mean.strides[0]", mean), mean);
  const std::string v = loaded(element_ref("var", "c * var.strides[0]", var), var);
  module.add_once(
      name,
      str_cat("extern \"C\" __global__ void __launch_bounds__(256) ", name,
              "(KTensor mean, KTensor var, KTensor save_mean, KTensor save_invstd, float eps, "
              "i64 channels) {\n",
              "  for (i64 c = (i64)blockIdx.x * blockDim.x + threadIdx.x; c < channels;\n",
              "       c += (i64)gridDim.x * blockDim.x) {\n",
              "    ", element_ref("save_mean", "c * save_mean.strides[0]", out), " = ",
              stored(str_cat("(float)(", m, ")"), out), ";\n",
              "    ", element_ref("save_invstd", "c * save_invstd.strides[0]", out), " = ",
              stored(str_cat("1.0f / sqrtf((float)(", v, ") + eps)"), out), ";\n",
              "  }\n}\n"));
  return name;
}

int pointwise_packet(const PointwiseGroup& group) {
  size_t widest = 1;
  for (const ir::Value* v : group.inputs) widest = std::max(widest, dtype_size(v->dtype));
  for (const ir::Value* v : group.outputs) widest = std::max(widest, dtype_size(v->dtype));
  return static_cast<int>(16 / widest);
}

Result<std::string> pointwise_kernel(ModuleSource& module, const PointwiseGroup& group, int rank) {
  if (rank > kMaxKernelDims) return unsupported("pointwise kernel of rank ", rank);
  KILN_ASSIGN_OR_RETURN(GroupCode code, group_code(group));
  const int packet = pointwise_packet(group);
  // The flat kernel spells out every dtype and the computation; with the rank and the packet
  // (both fixed by them) that is everything the kernels are made from.
  const std::string flat = flat_kernel("", code);
  const std::string key = str_cat(flat, "|", rank, "|", packet);
  const std::string name = str_cat("kiln_pw_", xxhash64(key.data(), key.size()));
  module.add_once(std::string(kPacketKey), std::string(kPacketCode));
  // A rank-0 output is one element: the flat kernels take it, and there are no rows.
  module.add_once(name, str_cat(flat_kernel(name, code), vec_kernel(name, code, packet),
                                rank > 0 ? rows_kernel(name, code, packet, rank) : "",
                                nd_kernel(name, code, rank)));
  return name;
}

}  // namespace kiln::cuda
