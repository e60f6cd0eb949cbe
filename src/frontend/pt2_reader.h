// Reads the archives that torch.export.save writes (PyTorch >= 2.9): a ZIP holding
// `<name>/models/model.json` (the program), `<name>/data/weights/*` and `<name>/data/constants/*`
// (raw tensor bytes) with their `*_config.json`. Stored entries are used in place: weight tensors
// point into the mapped file (or the caller's bytes), which the program's tensors keep alive.
#pragma once

#include <memory>
#include <string>

#include "ir/program.h"

namespace kiln::frontend {

struct ReadOptions {
  // Check every entry's CRC-32 (reads every byte of the weights once; off by default).
  bool verify_crc = false;
  // Run shape inference over the graph and compare with the shapes the program records.
  bool check_inference = true;
  // For kiln.compile's split module, which carries out the program's signature in PyTorch: a
  // user-input mutation is read as a plain output (the module copies it into the input, as
  // torch.export's unlifted module does) and a None output is left out. Off for an engine that
  // runs on its own, whose runtime would drop the mutation.
  bool torch_keeps_signature = false;
};

Result<std::shared_ptr<ir::Program>> read_program_file(const std::string& path,
                                                       const ReadOptions& options = {});
// Reads an archive held in memory (e.g. a BytesIO's buffer). The bytes are copied once, into
// aligned memory that the program's weight tensors then point into; the caller's buffer is free
// to go when this returns.
Result<std::shared_ptr<ir::Program>> read_program_bytes(std::string_view bytes,
                                                        const ReadOptions& options = {});

}  // namespace kiln::frontend
