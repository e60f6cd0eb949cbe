#include "format/enum_codec.h"

namespace kiln::format {

fb::DType to_fb(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return fb::DType::Float32;
    case DType::kFloat16: return fb::DType::Float16;
    case DType::kBFloat16: return fb::DType::BFloat16;
    case DType::kFloat64: return fb::DType::Float64;
    case DType::kInt64: return fb::DType::Int64;
    case DType::kInt32: return fb::DType::Int32;
    case DType::kInt16: return fb::DType::Int16;
    case DType::kInt8: return fb::DType::Int8;
    case DType::kUInt8: return fb::DType::UInt8;
    case DType::kBool: return fb::DType::Bool;
    case DType::kComplex64: return fb::DType::Complex64;
  }
  return fb::DType::Undefined;
}

std::optional<DType> from_fb(fb::DType dtype) {
  switch (dtype) {
    case fb::DType::Float32: return DType::kFloat32;
    case fb::DType::Float16: return DType::kFloat16;
    case fb::DType::BFloat16: return DType::kBFloat16;
    case fb::DType::Float64: return DType::kFloat64;
    case fb::DType::Int64: return DType::kInt64;
    case fb::DType::Int32: return DType::kInt32;
    case fb::DType::Int16: return DType::kInt16;
    case fb::DType::Int8: return DType::kInt8;
    case fb::DType::UInt8: return DType::kUInt8;
    case fb::DType::Bool: return DType::kBool;
    case fb::DType::Complex64: return DType::kComplex64;
    case fb::DType::Undefined: break;
  }
  return std::nullopt;
}

fb::ValueKind to_fb(ir::ValueKind kind) {
  switch (kind) {
    case ir::ValueKind::kTensor: return fb::ValueKind::Tensor;
    case ir::ValueKind::kSymInt: return fb::ValueKind::SymInt;
    case ir::ValueKind::kSymFloat: return fb::ValueKind::SymFloat;
    case ir::ValueKind::kSymBool: return fb::ValueKind::SymBool;
  }
  return fb::ValueKind::Tensor;
}

std::optional<ir::ValueKind> from_fb(fb::ValueKind kind) {
  switch (kind) {
    case fb::ValueKind::Tensor: return ir::ValueKind::kTensor;
    case fb::ValueKind::SymInt: return ir::ValueKind::kSymInt;
    case fb::ValueKind::SymFloat: return ir::ValueKind::kSymFloat;
    case fb::ValueKind::SymBool: return ir::ValueKind::kSymBool;
  }
  return std::nullopt;
}

fb::InputKind to_fb(ir::InputKind kind) {
  switch (kind) {
    case ir::InputKind::kUserInput: return fb::InputKind::UserInput;
    case ir::InputKind::kParameter: return fb::InputKind::Parameter;
    case ir::InputKind::kBuffer: return fb::InputKind::Buffer;
    case ir::InputKind::kConstant: return fb::InputKind::Constant;
  }
  return fb::InputKind::UserInput;
}

std::optional<ir::InputKind> from_fb(fb::InputKind kind) {
  switch (kind) {
    case fb::InputKind::UserInput: return ir::InputKind::kUserInput;
    case fb::InputKind::Parameter: return ir::InputKind::kParameter;
    case fb::InputKind::Buffer: return ir::InputKind::kBuffer;
    case fb::InputKind::Constant: return ir::InputKind::kConstant;
  }
  return std::nullopt;
}

fb::MemoryFormat to_fb(ir::MemoryFormat format) {
  switch (format) {
    case ir::MemoryFormat::kContiguous: return fb::MemoryFormat::Contiguous;
    case ir::MemoryFormat::kChannelsLast: return fb::MemoryFormat::ChannelsLast;
    case ir::MemoryFormat::kChannelsLast3d: return fb::MemoryFormat::ChannelsLast3d;
    case ir::MemoryFormat::kPreserve: return fb::MemoryFormat::Preserve;
  }
  return fb::MemoryFormat::Contiguous;
}

std::optional<ir::MemoryFormat> from_fb(fb::MemoryFormat format) {
  switch (format) {
    case fb::MemoryFormat::Contiguous: return ir::MemoryFormat::kContiguous;
    case fb::MemoryFormat::ChannelsLast: return ir::MemoryFormat::kChannelsLast;
    case fb::MemoryFormat::ChannelsLast3d: return ir::MemoryFormat::kChannelsLast3d;
    case fb::MemoryFormat::Preserve: return ir::MemoryFormat::kPreserve;
  }
  return std::nullopt;
}

fb::KernelImageKind to_fb(KernelImageKind kind) {
  return kind == KernelImageKind::kPtx ? fb::KernelImageKind::Ptx : fb::KernelImageKind::Cubin;
}

std::optional<KernelImageKind> from_fb(fb::KernelImageKind kind) {
  switch (kind) {
    case fb::KernelImageKind::Cubin: return KernelImageKind::kCubin;
    case fb::KernelImageKind::Ptx: return KernelImageKind::kPtx;
  }
  return std::nullopt;
}

std::string unknown_code_message(std::string_view what, unsigned code, unsigned first,
                                 unsigned last) {
  return str_cat("expected a known ", what, " (codes ", first, "..", last, "), found code ", code,
                 ": the engine needs a newer kiln, or is corrupt");
}

}  // namespace kiln::format
