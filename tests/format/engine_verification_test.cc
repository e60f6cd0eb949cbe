// read_engine's layers, each on the file it exists for: not an engine at all, a damaged structure
// (every truncation, flipped bytes), another major version, and contents that do not hold
// together (unknown ops and codes, references out of range, weights outside their segment, bad
// profiles). Run under ASan: nothing may read outside the buffer.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <sstream>

#include "format/engine.h"
#include "format/engine_fixture.h"
#include "format/engine_generated.h"

namespace kiln::format {
namespace {

using testing::ExactBuffer;
using testing::make_engine;
using testing::write_or_die;

const std::string& engine_bytes() {
  static const std::string bytes = write_or_die(make_engine());
  return bytes;
}

Status read_status(std::string_view bytes) {
  ExactBuffer buffer(bytes);
  return read_engine(buffer.view(), nullptr).take_status();
}

std::string tamper(const std::function<void(fb::Engine&)>& edit) {
  std::string copy = engine_bytes();
  edit(*fb::GetMutableEngine(copy.data()));
  return copy;
}

fb::Node& node_named(fb::Engine& e, std::string_view name) {
  auto* nodes = e.mutable_program()->mutable_graph()->mutable_nodes();
  for (flatbuffers::uoffset_t i = 0; i < nodes->size(); ++i) {
    if (nodes->Get(i)->name()->string_view() == name) return *nodes->GetMutableObject(i);
  }
  ADD_FAILURE() << "no node " << name;
  return *nodes->GetMutableObject(0);
}

int32_t value_id(std::string_view name) {
  const auto* values = fb::GetEngine(engine_bytes().data())->program()->graph()->values();
  for (flatbuffers::uoffset_t i = 0; i < values->size(); ++i) {
    if (values->Get(i)->name()->string_view() == name) return static_cast<int32_t>(i);
  }
  ADD_FAILURE() << "no value " << name;
  return 0;
}

#define EXPECT_STATUS(status, code_, fragment)                                   \
  do {                                                                           \
    const Status s_ = (status);                                                  \
    EXPECT_EQ(s_.code(), StatusCode::code_) << s_.to_string();                   \
    EXPECT_NE(s_.message().find(fragment), std::string::npos) << s_.to_string(); \
  } while (0)

// ---- Layer 1: size and file identifier ----

TEST(EngineVerificationTest, EmptyAndShortBuffersAreNotEngines) {
  EXPECT_STATUS(read_status(""), kInvalidArgument,
                "not a kiln engine (expected at least 8 bytes with file identifier 'KILN', found "
                "0 bytes)");
  EXPECT_STATUS(read_status("KILN"), kInvalidArgument, "found 4 bytes");
  EXPECT_STATUS(read_engine_summary("1234567").status(), kInvalidArgument, "not a kiln engine");
}

TEST(EngineVerificationTest, WrongIdentifierIsNotAnEngine) {
  std::string bytes = engine_bytes();
  bytes.replace(4, 4, "ABCD");
  EXPECT_STATUS(read_status(bytes), kInvalidArgument,
                "not a kiln engine (expected file identifier 'KILN', found 'ABCD')");
  bytes.replace(4, 4, std::string("K\0\xffN", 4));
  EXPECT_STATUS(read_status(bytes), kInvalidArgument, "found 'K\\x00\\xffN'");

  std::ifstream in(std::string(KILN_TEST_DATA_DIR) + "/pt2/linear.pt2", std::ios::binary);
  std::stringstream archive;
  archive << in.rdbuf();
  ASSERT_GT(archive.str().size(), 8u);
  EXPECT_STATUS(read_status(archive.str()), kInvalidArgument, "not a kiln engine");
}

// ---- Layer 2: FlatBuffers structure ----

TEST(EngineVerificationTest, EveryTruncationIsRejected) {
  const std::string& bytes = engine_bytes();
  for (size_t n = 0; n < bytes.size(); ++n) {
    Status s = read_status(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(s.ok()) << "truncated to " << n << " bytes";
    if (n < 8) {
      ASSERT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
    } else {
      ASSERT_EQ(s.code(), StatusCode::kDataLoss) << n << ": " << s.to_string();
      ASSERT_EQ(s.message().rfind("corrupt engine: ", 0), 0u) << s.to_string();
    }
  }
  Status s = read_status(std::string_view(bytes).substr(0, bytes.size() - 1));
  EXPECT_NE(s.message().find(str_cat("expected ", bytes.size(),
                                     " bytes (the size the engine "
                                     "records), found ",
                                     bytes.size() - 1, " (truncated)")),
            std::string::npos)
      << s.to_string();
}

// The same, with the recorded size patched to match, so that the FlatBuffers verifier and the
// content checks see every truncated structure themselves.
TEST(EngineVerificationTest, TruncationsWithMatchingSizeFailCleanly) {
  const std::string& bytes = engine_bytes();
  uint64_t size = bytes.size();
  const std::string pattern(reinterpret_cast<const char*>(&size), sizeof(size));
  const size_t at = bytes.find(pattern);
  ASSERT_NE(at, std::string::npos);
  ASSERT_LT(at, 256u) << "the root table comes first";
  size_t rejected = 0, tried = 0;
  for (size_t n = at + 8; n < bytes.size(); ++n) {
    std::string cut = bytes.substr(0, n);
    const uint64_t cut_size = n;
    std::memcpy(cut.data() + at, &cut_size, sizeof(cut_size));
    Status s = read_status(cut);
    ++tried;
    if (s.ok()) continue;  // only the trailing padding of the weight segment can go unnoticed
    ++rejected;
    ASSERT_TRUE(s.code() == StatusCode::kDataLoss || s.code() == StatusCode::kUnsupported)
        << n << ": " << s.to_string();
  }
  EXPECT_GE(rejected + 64, tried);
}

TEST(EngineVerificationTest, FlippedBytesNeverCrash) {
  const std::string& bytes = engine_bytes();
  size_t rejected = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string flipped = bytes;
    flipped[i] = static_cast<char>(flipped[i] ^ 0xff);
    Status s = read_status(flipped);
    if (s.ok()) continue;  // weight bytes, padding, characters of names
    ++rejected;
    ASSERT_TRUE(s.code() == StatusCode::kDataLoss || s.code() == StatusCode::kUnsupported ||
                s.code() == StatusCode::kInvalidArgument)
        << "byte " << i << ": " << s.to_string();
  }
  EXPECT_GT(rejected, bytes.size() / 4);
  std::string flipped = bytes;
  flipped[1] = static_cast<char>(flipped[1] ^ 0x40);  // the root offset
  EXPECT_STATUS(read_status(flipped), kDataLoss, "corrupt engine: the root table");
}

TEST(EngineVerificationTest, DanglingOffsetIsCorrupt) {
  // A vector longer than the file: only the FlatBuffers verifier can see this.
  std::string bytes = engine_bytes();
  const auto* root = fb::GetEngine(bytes.data());
  // The weight segment's length prefix sits 4 bytes before its data.
  const size_t length_at = static_cast<size_t>(root->weight_data()->data() -
                                               reinterpret_cast<const uint8_t*>(bytes.data())) -
                           4;
  const uint32_t huge = 0x7ffffff0;
  std::memcpy(bytes.data() + length_at, &huge, sizeof(huge));
  EXPECT_STATUS(read_status(bytes), kDataLoss,
                "corrupt engine: its FlatBuffers structure does not verify");
}

// ---- Layer 3: format version ----

TEST(EngineVerificationTest, OtherMajorVersionsAreUnsupported) {
  std::string newer = tamper([](fb::Engine& e) {
    e.mutate_format_major(2);
    e.mutate_format_minor(3);
  });
  EXPECT_STATUS(read_status(newer), kUnsupported,
                "engine format 2.3 is newer than this kiln reads (1.x)");
  std::string older = tamper([](fb::Engine& e) {
    e.mutate_format_major(0);
    e.mutate_format_minor(0);
  });
  EXPECT_STATUS(read_status(older), kUnsupported,
                "engine format 0.0 is older than this kiln reads (1.x): rebuild the engine");
  // The summary still says which version it is.
  auto summary = read_engine_summary(newer);
  ASSERT_TRUE(summary.ok()) << summary.status().to_string();
  EXPECT_EQ(summary->format_major, 2u);
  EXPECT_EQ(summary->format_minor, 3u);
  EXPECT_TRUE(summary->target.backend.empty());
}

TEST(EngineVerificationTest, NewerMinorVersionIsRead) {
  std::string newer = tamper([](fb::Engine& e) { e.mutate_format_minor(kFormatMinor + 7); });
  auto read = read_engine(newer, nullptr);
  EXPECT_TRUE(read.ok()) << read.status().to_string();
}

// A file from a newer minor: fields this kiln does not know, in the root and in a nested table,
// and without the optional ones (kernels, build info, weights). Built by hand, as a newer writer
// would.
TEST(EngineVerificationTest, UnknownFieldsOfANewerMinorAreIgnored) {
  flatbuffers::FlatBufferBuilder fbb;
  auto x_name = fbb.CreateString("x");
  auto x_shape = fbb.CreateVectorOfStructs(std::vector<fb::Dim>{fb::Dim(2, -1)});
  auto x = fb::CreateValue(fbb, x_name, fb::ValueKind::Tensor, fb::DType::Float32, x_shape, true);
  auto y_name = fbb.CreateString("relu");
  auto y = fb::CreateValue(fbb, y_name, fb::ValueKind::Tensor, fb::DType::Float32, x_shape, true);
  auto arg = fb::CreateArg(fbb, fb::Argument::ValueArg, fb::CreateValueArg(fbb, 0).Union());
  auto relu =
      fb::CreateNode(fbb, fbb.CreateString("relu"), fbb.CreateString("torch.ops.aten.relu.default"),
                     fbb.CreateVector(std::vector<flatbuffers::Offset<fb::Arg>>{arg}),
                     fbb.CreateVector(std::vector<int32_t>{1}));
  auto input = fb::CreateGraphInput(fbb, 0, fb::InputKind::UserInput);
  auto values = fbb.CreateVector(std::vector<flatbuffers::Offset<fb::Value>>{x, y});
  auto nodes = fbb.CreateVector(std::vector<flatbuffers::Offset<fb::Node>>{relu});
  auto inputs = fbb.CreateVector(std::vector<flatbuffers::Offset<fb::GraphInput>>{input});
  auto graph =
      fb::CreateGraph(fbb, values, nodes, inputs, fbb.CreateVector(std::vector<int32_t>{1}));
  auto program = fb::CreateProgram(fbb, graph);
  auto backend = fbb.CreateString("cpu");
  auto future_string = fbb.CreateString("a field from the future");
  const auto target_start = fbb.StartTable();
  fbb.AddOffset(fb::Target::VT_BACKEND, backend);
  fbb.AddOffset(flatbuffers::FieldIndexToOffset(9), future_string);
  auto target = flatbuffers::Offset<fb::Target>(fbb.EndTable(target_start));
  auto profiles =
      fbb.CreateVector(std::vector<flatbuffers::Offset<fb::Profile>>{fb::CreateProfile(fbb)});
  auto memory =
      fbb.CreateVector(std::vector<flatbuffers::Offset<fb::MemoryPlan>>{fb::CreateMemoryPlan(fbb)});
  const auto root_start = fbb.StartTable();
  fbb.AddElement<uint32_t>(fb::Engine::VT_FORMAT_MAJOR, kFormatMajor, 0);
  fbb.AddElement<uint32_t>(fb::Engine::VT_FORMAT_MINOR, kFormatMinor + 1, 0);
  fbb.AddElement<uint64_t>(fb::Engine::VT_FILE_SIZE, 1, 0);
  fbb.AddOffset(fb::Engine::VT_TARGET, target);
  fbb.AddOffset(fb::Engine::VT_PROGRAM, program);
  fbb.AddOffset(fb::Engine::VT_PROFILES, profiles);
  fbb.AddOffset(fb::Engine::VT_MEMORY, memory);
  fbb.AddElement<uint64_t>(flatbuffers::FieldIndexToOffset(30), 0xfeedface, 0);
  fbb.AddOffset(flatbuffers::FieldIndexToOffset(31), future_string);
  fbb.Finish(flatbuffers::Offset<fb::Engine>(fbb.EndTable(root_start)), "KILN");
  std::string bytes(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
  ASSERT_TRUE(fb::GetMutableEngine(bytes.data())->mutate_file_size(bytes.size()));

  ExactBuffer buffer(bytes);
  auto read = read_engine(buffer.view(), nullptr);
  ASSERT_TRUE(read.ok()) << read.status().to_string();
  EXPECT_EQ(read->target.backend, "cpu");
  EXPECT_EQ(read->program->graph.nodes().size(), 1u);
  EXPECT_EQ(read->program->graph.nodes()[0].op, ir::OpKey::aten_relu_default);
  EXPECT_TRUE(read->kernels.empty());
  EXPECT_EQ(read->profiles.size(), 1u);
  EXPECT_FALSE(read->build.weights_stripped);
}

// ---- Layer 4: contents ----

TEST(EngineVerificationTest, UnknownOpNeedsANewerKiln) {
  std::string bytes = engine_bytes();
  const size_t at = bytes.find("torch.ops.aten.relu.default");
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, 27, "torch.ops.aten.zelu.default");
  EXPECT_STATUS(read_status(bytes), kUnsupported,
                "cannot read engine: node 'relu' uses op 'torch.ops.aten.zelu.default', which "
                "this kiln does not know: the engine needs a newer kiln");
}

TEST(EngineVerificationTest, OutOfRangeValueIdsAreCorrupt) {
  auto output = tamper([](fb::Engine& e) {
    e.mutable_program()->mutable_graph()->mutable_outputs()->Mutate(0, 999);
  });
  const size_t num_values = make_engine().program->graph.num_values();
  EXPECT_STATUS(read_status(output), kDataLoss,
                str_cat("corrupt engine: graph output: expected a value id in [0, ", num_values,
                        "), found 999"));
  auto arg = tamper([](fb::Engine& e) {
    fb::Arg* first = node_named(e, "mul").mutable_args()->GetMutableObject(0);
    ASSERT_EQ(first->value_type(), fb::Argument::ValueArg);
    auto* value = static_cast<fb::ValueArg*>(first->mutable_value());
    ASSERT_TRUE(value->mutate_value(-7));
  });
  EXPECT_STATUS(read_status(arg), kDataLoss, "node 'mul' argument 0: expected a value id in [0, ");
  auto hole = tamper([](fb::Engine& e) {
    // -1 is a hole only in tensor lists and node outputs; -2 is nothing.
    node_named(e, "lnb").mutable_outputs()->Mutate(1, -2);
  });
  EXPECT_STATUS(read_status(hole), kDataLoss, "node 'lnb' output: expected a value id");
  auto expr = tamper([](fb::Engine& e) {
    auto* values = e.mutable_program()->mutable_graph()->mutable_values();
    ASSERT_TRUE(values->GetMutableObject(value_id("mul_sym"))->mutate_expr(55));
  });
  EXPECT_STATUS(read_status(expr), kDataLoss, "expected an expression index in [0, ");
}

TEST(EngineVerificationTest, UseBeforeDefinitionIsCaughtByTheIrVerifier) {
  auto bytes = tamper([&](fb::Engine& e) {
    auto* value = static_cast<fb::ValueArg*>(
        node_named(e, "mul").mutable_args()->GetMutableObject(0)->mutable_value());
    ASSERT_TRUE(value->mutate_value(value_id("div")));
  });
  EXPECT_STATUS(read_status(bytes), kDataLoss,
                "corrupt engine: node 'mul' reads 'div' before it is defined");
}

TEST(EngineVerificationTest, UnknownCodesNeedANewerKiln) {
  auto kind = tamper([](fb::Engine& e) {
    // The generated code has no setter for a union's type: set the field through the Table.
    auto* arg = reinterpret_cast<flatbuffers::Table*>(
        node_named(e, "mul").mutable_args()->GetMutableObject(1));
    ASSERT_TRUE(arg->SetField<uint8_t>(fb::Arg::VT_VALUE_TYPE, 200, 0));
  });
  EXPECT_STATUS(read_status(kind), kUnsupported,
                "node 'mul' argument 1: expected a known argument kind (codes 1..13), found code "
                "200: the engine needs a newer kiln");
  auto dtype = tamper([](fb::Engine& e) {
    auto* values = e.mutable_program()->mutable_graph()->mutable_values();
    ASSERT_TRUE(
        values->GetMutableObject(value_id("add"))->mutate_dtype(static_cast<fb::DType>(42)));
  });
  EXPECT_STATUS(read_status(dtype), kUnsupported,
                "expected a known dtype (codes 1..11), found code 42");
  auto image = tamper([](fb::Engine& e) {
    ASSERT_TRUE(
        e.mutable_kernels()->GetMutableObject(1)->mutate_kind(static_cast<fb::KernelImageKind>(9)));
  });
  EXPECT_STATUS(read_status(image), kUnsupported,
                "kernel image 'pointwise_0_ptx': expected a known image kind (codes 0..1)");
}

TEST(EngineVerificationTest, WeightsMustLieInsideTheirSegment) {
  // Records are sorted by value id: record 1 is p_h (float16[5]), 64 bytes into the segment.
  auto outside = tamper([](fb::Engine& e) {
    auto* w = e.mutable_program()->mutable_weights()->GetMutableObject(1);
    ASSERT_EQ(w->offset(), 64u);
    ASSERT_TRUE(w->mutate_offset((e.weight_data()->size() + 63) / 64 * 64 + 64));
  });
  EXPECT_STATUS(read_status(outside), kDataLoss, "-byte weight segment");
  EXPECT_STATUS(read_status(outside), kDataLoss, "corrupt engine: weight 1 (value ");
  auto wrapped = tamper([](fb::Engine& e) {
    ASSERT_TRUE(
        e.mutable_program()->mutable_weights()->GetMutableObject(1)->mutate_offset(~uint64_t{63}));
  });
  EXPECT_STATUS(read_status(wrapped), kDataLoss, "-byte weight segment");
  auto misaligned = tamper([](fb::Engine& e) {
    ASSERT_TRUE(e.mutable_program()->mutable_weights()->GetMutableObject(1)->mutate_offset(66));
  });
  EXPECT_STATUS(read_status(misaligned), kDataLoss,
                "expected an offset that is a multiple of 64, found 66");
  auto nbytes = tamper([](fb::Engine& e) {
    ASSERT_TRUE(e.mutable_program()->mutable_weights()->GetMutableObject(0)->mutate_nbytes(47));
  });
  EXPECT_STATUS(read_status(nbytes), kDataLoss, "expected 48 bytes for float32[3, 4], found 47");
  auto huge = tamper([](fb::Engine& e) {
    e.mutable_program()->mutable_weights()->GetMutableObject(0)->mutable_sizes()->Mutate(
        0, int64_t{1} << 62);
  });
  EXPECT_STATUS(read_status(huge), kDataLoss, "expected non-negative sizes");
  auto strides = tamper([](fb::Engine& e) {
    e.mutable_program()->mutable_weights()->GetMutableObject(0)->mutable_strides()->Mutate(1, 2);
  });
  EXPECT_STATUS(read_status(strides), kDataLoss, "expected the contiguous strides [4, 1]");
  auto shape = tamper([](fb::Engine& e) {
    auto* w = e.mutable_program()->mutable_weights()->GetMutableObject(0);
    w->mutable_sizes()->Mutate(0, 4);
    w->mutable_sizes()->Mutate(1, 3);
    w->mutable_strides()->Mutate(0, 3);
  });
  EXPECT_STATUS(read_status(shape), kDataLoss, "expected float32[3, 4], found float32[4, 3]");
}

TEST(EngineVerificationTest, ProfilesMustCoverTheInputSymbols) {
  auto order = tamper([](fb::Engine& e) {
    auto* s = e.mutable_profiles()->GetMutableObject(0)->mutable_symbols()->GetMutableObject(0);
    ASSERT_TRUE(s->mutate_min(9));
  });
  EXPECT_STATUS(read_status(order), kDataLoss,
                "corrupt engine: profile 0 symbol 's0': expected 0 <= min <= opt <= max, found "
                "min 9, opt 8, max 32");
  std::string renamed = engine_bytes();  // each profile has its own copy of the string
  auto* symbol = fb::GetMutableEngine(renamed.data())
                     ->mutable_profiles()
                     ->GetMutableObject(1)
                     ->mutable_symbols()
                     ->GetMutableObject(0)
                     ->mutable_symbol();
  ASSERT_EQ(symbol->string_view(), "s0");
  symbol->Mutate(1, '9');
  EXPECT_STATUS(read_status(renamed), kDataLoss,
                "profile 1 symbol 's9': expected a symbol of the input bindings");
}

}  // namespace
}  // namespace kiln::format
