// `kiln run MODEL.pt2|MODEL.engine [--input NAME=FILE.npy ...] [--random [--seed N]]
//  [--output-dir DIR]`
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>

#include "base/element_cast.h"
#include "cli_args.h"
#include "commands.h"
#include "engine_file.h"
#include "frontend/pt2_reader.h"
#include "ir/printer.h"
#include "kernels/cpu/cpu_backend.h"
#include "runtime/engine_runtime.h"
#include "runtime/executor.h"
#include "runtime/npy_tensor.h"

namespace kiln::cli {
namespace {

// Random values for an input: normal floats, small non-negative ints (valid as indices into any
// embedding of 10 rows or more), fair bools. Symbolic dims take the program's example sizes.
Result<Tensor> random_input(const ir::Value& v, std::mt19937_64& rng) {
  Shape shape;
  for (const ir::SymDim& d : v.shape) shape.push_back(d.value);
  KILN_ASSIGN_OR_RETURN(Tensor t, Tensor::empty(v.dtype, shape));
  std::normal_distribution<float> normal;
  std::uniform_int_distribution<int64_t> small(0, 9);
  dispatch_dtype(v.dtype, [&]<typename T>() {
    T* data = t.data<T>();
    for (int64_t i = 0; i < t.numel(); ++i) {
      if constexpr (std::is_same_v<T, bool>) {
        data[i] = small(rng) % 2 == 0;
      } else if constexpr (std::is_integral_v<T>) {
        data[i] = static_cast<T>(small(rng));
      } else {
        data[i] = element_cast<T>(normal(rng));
      }
    }
  });
  return t;
}

Result<std::vector<Tensor>> gather_inputs(const ir::Graph& graph, const ParsedArgs& args) {
  std::map<std::string, std::string> files;
  for (const std::string& spec : args.values("input")) {
    size_t eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      return invalid_argument("--input expects NAME=FILE.npy, found '", spec, "'");
    }
    files[spec.substr(0, eq)] = spec.substr(eq + 1);
  }
  std::string names;
  std::set<std::string_view> known;
  for (const ir::GraphInput* in : graph.user_inputs()) {
    names += str_cat(names.empty() ? "" : ", ", in->value->name);
    known.insert(in->value->name);
  }
  for (const auto& [name, file] : files) {
    if (!known.count(name)) {
      return invalid_argument("the program has no input '", name, "' (its inputs: ", names, ")");
    }
  }
  std::mt19937_64 rng(std::stoull(args.value("seed").value_or("0")));
  std::vector<Tensor> inputs;
  for (const ir::GraphInput* in : graph.user_inputs()) {
    const ir::Value& v = *in->value;
    auto it = files.find(v.name);
    if (it != files.end()) {
      KILN_ASSIGN_OR_RETURN(NpyArray array, read_npy_file(it->second), "input '", v.name, "'");
      KILN_ASSIGN_OR_RETURN(Tensor t, tensor_from_npy(array), "input '", v.name, "' (", it->second,
                            ")");
      inputs.push_back(std::move(t));
    } else if (args.has("random")) {
      KILN_ASSIGN_OR_RETURN(Tensor t, random_input(v, rng));
      inputs.push_back(std::move(t));
    } else {
      return invalid_argument("missing input '", v.name, "' (", ir::value_type_to_string(v),
                              "): pass --input ", v.name, "=FILE.npy or --random");
    }
  }
  return inputs;
}

Status write_outputs(const ir::Graph& graph, const std::vector<ir::RtValue>& outputs,
                     const std::optional<std::string>& dir) {
  if (dir) {
    std::error_code ec;
    std::filesystem::create_directories(*dir, ec);
    if (ec) return io_error("cannot create '", *dir, "': ", ec.message());
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const ir::RtValue& out = outputs[i];
    const std::string& name = graph.outputs()[i]->name;
    Tensor t = out.tensor;
    if (out.kind != ir::RtValue::Kind::kTensor) {  // a symbolic output: a 0-d array
      KILN_ASSIGN_OR_RETURN(t, Tensor::empty(DType::kInt64, {}));
      *t.data<int64_t>() =
          out.kind == ir::RtValue::Kind::kFloat ? static_cast<int64_t>(out.f) : out.i;
      std::printf("  output %zu %s = %lld\n", i, name.c_str(),
                  static_cast<long long>(*t.data<int64_t>()));
    } else {
      std::printf("  output %zu %s: %s\n", i, name.c_str(), t.description().c_str());
    }
    if (dir) {
      const std::string path = str_cat(*dir, "/output_", i, ".npy");
      KILN_RETURN_IF_ERROR(write_tensor_npy(path, t), "writing '", path, "'");
    }
  }
  return ok_status();
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

Status run_engine(const ParsedArgs& args) {
  const std::string& path = args.positional[0];
  KILN_ASSIGN_OR_RETURN(auto bytes, read_whole_file(path));
  const auto load_start = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(auto engine, EngineRuntime::load(bytes), path);
  const double load_ms = ms_since(load_start);
  KILN_ASSIGN_OR_RETURN(auto inputs, gather_inputs(engine->graph(), args));
  const auto start = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(auto outputs, engine->run(inputs));
  std::printf("loaded %s in %.2f ms; ran it on the %s backend in %.2f ms\n", path.c_str(), load_ms,
              engine->engine().target.backend.c_str(), ms_since(start));
  return write_outputs(engine->graph(), outputs, args.value("output-dir"));
}

Status run(const ParsedArgs& args) {
  if (is_engine_file(args.positional[0])) return run_engine(args);
  KILN_ASSIGN_OR_RETURN(auto program, frontend::read_program_file(args.positional[0]));
  KILN_ASSIGN_OR_RETURN(auto executor, Executor::create(program, cpu::cpu_backend()));
  KILN_ASSIGN_OR_RETURN(auto inputs, gather_inputs(program->graph, args));
  const auto start = std::chrono::steady_clock::now();
  KILN_ASSIGN_OR_RETURN(auto outputs, executor->run(inputs));
  std::printf("ran %s on the cpu backend in %.2f ms\n", args.positional[0].c_str(),
              ms_since(start));
  return write_outputs(program->graph, outputs, args.value("output-dir"));
}

}  // namespace

int run_command(const std::vector<std::string>& args) {
  auto parsed =
      parse_args(args, {{"input", true, true}, {"random"}, {"seed", true}, {"output-dir", true}});
  if (!parsed.ok()) return report_error(parsed.status().message(), 2);
  if (parsed->positional.size() != 1) {
    return report_error(
        "usage: kiln run MODEL.pt2|MODEL.engine [--input NAME=FILE.npy ...] [--random [--seed N]] "
        "[--output-dir DIR]",
        2);
  }
  if (auto seed = parsed->value("seed");
      seed && seed->find_first_not_of("0123456789") != std::string::npos) {
    return report_error("--seed expects a non-negative integer, found '" + *seed + "'", 2);
  }
  Status s = run(*parsed);
  return s.ok() ? 0 : report_error(s.message());
}

}  // namespace kiln::cli
