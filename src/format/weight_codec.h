// The weight segment of an engine file: one byte vector holding every weight, each contiguous and
// at a 64-byte-aligned offset, plus one record per weight (value id, dtype, sizes, strides, byte
// offset and size). See docs/engine-format.md.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <memory>
#include <unordered_map>
#include <vector>

#include "base/tensor.h"
#include "format/engine_generated.h"
#include "ir/program.h"

namespace kiln::format {

// Weights start at multiples of this, in the segment and (so that loads can be zero-copy) in the
// file and in memory.
inline constexpr size_t kWeightAlignment = 64;

struct WeightRecord {
  uint32_t value = 0;
  const Tensor* tensor = nullptr;
  uint64_t offset = 0;
  uint64_t nbytes = 0;
};

struct WeightLayout {
  std::vector<WeightRecord> records;  // by value id, so one program always gives the same bytes
  uint64_t segment_bytes = 0;         // 0 when stripped
};

// Places every weight of `program` (stripped: records only, no bytes). Fails with invalid_argument
// for a weight without data when not stripped.
Result<WeightLayout> plan_weights(const ir::Program& program, bool stripped);

// Writes the segment (64-byte aligned in the finished buffer); null offset when it is empty.
Result<flatbuffers::Offset<flatbuffers::Vector<uint8_t>>> encode_weight_data(
    flatbuffers::FlatBufferBuilder& fbb, const WeightLayout& layout);
flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Weight>>> encode_weight_records(
    flatbuffers::FlatBufferBuilder& fbb, const WeightLayout& layout);

// Turns the records into tensors that are views of `segment` (zero-copy: `segment` borrows the
// engine's bytes, or holds an aligned copy of them). Stripped engines give meta tensors. Checks
// every record: value id below `num_values` and listed once, known dtype, contiguous strides,
// nbytes = dtype size * numel, offset a multiple of 64 and the bytes inside the segment.
Result<std::unordered_map<uint32_t, Tensor>> decode_weights(
    const flatbuffers::Vector<flatbuffers::Offset<fb::Weight>>* records, size_t num_values,
    const std::shared_ptr<Storage>& segment, bool stripped);

}  // namespace kiln::format
