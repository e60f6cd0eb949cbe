#include "format/weight_codec.h"

#include <algorithm>
#include <cstring>

#include "format/enum_codec.h"

namespace kiln::format {
namespace {

uint64_t align_up(uint64_t n) {
  return (n + kWeightAlignment - 1) / kWeightAlignment * kWeightAlignment;
}

// numel * element size, or nullopt for a negative size or a shape whose strides would not fit in
// int64 (zero dims are skipped for that check: contiguous strides multiply the other sizes).
std::optional<uint64_t> checked_nbytes(std::span<const int64_t> sizes, DType dtype) {
  int64_t extent = static_cast<int64_t>(dtype_size(dtype));
  bool empty = false;
  for (int64_t s : sizes) {
    if (s < 0) return std::nullopt;
    empty = empty || s == 0;
    if (__builtin_mul_overflow(extent, std::max<int64_t>(s, 1), &extent)) return std::nullopt;
  }
  return empty ? 0 : static_cast<uint64_t>(extent);
}

}  // namespace

Result<WeightLayout> plan_weights(const ir::Program& program, bool stripped) {
  WeightLayout layout;
  for (const auto& [id, tensor] : program.weights) {
    layout.records.push_back(WeightRecord{id, &tensor, 0, tensor.nbytes()});
  }
  std::sort(layout.records.begin(), layout.records.end(),
            [](const WeightRecord& a, const WeightRecord& b) { return a.value < b.value; });
  if (stripped) return layout;
  uint64_t end = 0;
  for (WeightRecord& r : layout.records) {
    if (!r.tensor->has_data()) {
      return invalid_argument("weight of value ", r.value, " (", r.tensor->description(),
                              ") has no data; set build.weights_stripped to write an engine "
                              "without weights");
    }
    r.offset = align_up(end);
    end = r.offset + r.nbytes;
  }
  layout.segment_bytes = end;
  return layout;
}

Result<flatbuffers::Offset<flatbuffers::Vector<uint8_t>>> encode_weight_data(
    flatbuffers::FlatBufferBuilder& fbb, const WeightLayout& layout) {
  if (layout.segment_bytes == 0) return flatbuffers::Offset<flatbuffers::Vector<uint8_t>>();
  // ForceVectorAlignment would do this, but FlatBuffers 2.0.8 asserts alignments above 32
  // (FLATBUFFERS_MAX_ALIGNMENT). PreAlign pads so that the vector's data ends, and so starts, on a
  // 64-byte boundary counted from the end of the buffer, and raises the buffer's minimum alignment
  // to 64, which Finish() pads the whole buffer to: the data is 64-aligned from the file's start.
  fbb.PreAlign(layout.segment_bytes, kWeightAlignment);
  uint8_t* data = nullptr;
  auto vec = fbb.CreateUninitializedVector(layout.segment_bytes, 1, &data);
  std::memset(data, 0, layout.segment_bytes);  // the padding between weights, for reproducibility
  for (const WeightRecord& r : layout.records) {
    KILN_ASSIGN_OR_RETURN(Tensor contiguous, r.tensor->contiguous(), "weight of value ", r.value);
    if (r.nbytes) std::memcpy(data + r.offset, contiguous.raw_data(), r.nbytes);
  }
  return flatbuffers::Offset<flatbuffers::Vector<uint8_t>>(vec);
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Weight>>> encode_weight_records(
    flatbuffers::FlatBufferBuilder& fbb, const WeightLayout& layout) {
  std::vector<flatbuffers::Offset<fb::Weight>> records;
  for (const WeightRecord& r : layout.records) {
    const Shape& sizes = r.tensor->sizes();
    auto sizes_vec = fbb.CreateVector(sizes);
    auto strides_vec = fbb.CreateVector(contiguous_strides(sizes));
    records.push_back(fb::CreateWeight(fbb, static_cast<int32_t>(r.value), to_fb(r.tensor->dtype()),
                                       sizes_vec, strides_vec, r.offset, r.nbytes));
  }
  return fbb.CreateVector(records);
}

Result<std::unordered_map<uint32_t, Tensor>> decode_weights(
    const flatbuffers::Vector<flatbuffers::Offset<fb::Weight>>* records, size_t num_values,
    const std::shared_ptr<Storage>& segment, bool stripped) {
  std::unordered_map<uint32_t, Tensor> weights;
  if (stripped && segment->nbytes() != 0) {
    return data_loss("expected no weight data in a weights-stripped engine, found ",
                     segment->nbytes(), " bytes");
  }
  if (!records) return weights;
  for (flatbuffers::uoffset_t i = 0; i < records->size(); ++i) {
    const fb::Weight& w = *records->Get(i);
    const std::string where = str_cat("weight ", i, " (value ", w.value(), ")");
    if (w.value() < 0 || static_cast<size_t>(w.value()) >= num_values) {
      return data_loss("weight ", i, ": expected a value id in [0, ", num_values, "), found ",
                       w.value());
    }
    const uint32_t id = static_cast<uint32_t>(w.value());
    if (weights.count(id)) return data_loss(where, ": expected one weight per value, found two");
    auto dtype = from_fb(w.dtype());
    if (!dtype) {
      return unsupported(where, ": ", unknown_code("dtype", w.dtype(), fb::DType::Float32));
    }
    Shape sizes, strides;
    if (w.sizes()) sizes.assign(w.sizes()->begin(), w.sizes()->end());
    if (w.strides()) strides.assign(w.strides()->begin(), w.strides()->end());
    auto nbytes = checked_nbytes(sizes, *dtype);
    if (!nbytes) {
      return data_loss(where, ": expected non-negative sizes of at most 2^64 bytes, found ",
                       dtype_name(*dtype), shape_to_string(sizes));
    }
    if (strides != contiguous_strides(sizes)) {
      return data_loss(where, ": expected the contiguous strides ",
                       shape_to_string(contiguous_strides(sizes)), " of ", shape_to_string(sizes),
                       ", found ", shape_to_string(strides));
    }
    if (w.nbytes() != *nbytes) {
      return data_loss(where, ": expected ", *nbytes, " bytes for ", dtype_name(*dtype),
                       shape_to_string(sizes), ", found ", w.nbytes());
    }
    if (stripped) {
      weights.emplace(id, Tensor::meta(*dtype, std::move(sizes)));
      continue;
    }
    if (w.offset() % kWeightAlignment != 0) {
      return data_loss(where, ": expected an offset that is a multiple of ", kWeightAlignment,
                       ", found ", w.offset());
    }
    if (w.offset() > segment->nbytes() || w.nbytes() > segment->nbytes() - w.offset()) {
      return data_loss(where, ": bytes [", w.offset(), ", ", w.offset() + w.nbytes(),
                       ") lie outside the ", segment->nbytes(), "-byte weight segment");
    }
    const int64_t element_offset = static_cast<int64_t>(w.offset() / dtype_size(*dtype));
    KILN_ASSIGN_OR_RETURN(
        Tensor t,
        Tensor::from_storage(segment, *dtype, std::move(sizes), std::move(strides), element_offset),
        where);
    weights.emplace(id, std::move(t));
  }
  return weights;
}

}  // namespace kiln::format
