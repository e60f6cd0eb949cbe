#include "engine_file.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "format/engine.h"

namespace kiln::cli {

bool is_engine_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char header[8] = {};
  if (!in.read(header, sizeof(header))) return false;
  return std::string_view(header + 4, 4) == format::kFileIdentifier;
}

Result<std::shared_ptr<const std::string>> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return io_error("cannot open '", path, "': ", std::strerror(errno));
  const std::streamsize size = in.tellg();
  in.seekg(0);
  auto bytes = std::make_shared<std::string>(static_cast<size_t>(size), '\0');
  if (size > 0 && !in.read(bytes->data(), size)) {
    return io_error("cannot read '", path, "': ", std::strerror(errno));
  }
  return std::shared_ptr<const std::string>(std::move(bytes));
}

Status write_file_atomically(const std::string& path, const std::string& bytes) {
  const std::string temporary = str_cat(path, ".tmp.", ::getpid());
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) return io_error("cannot create '", temporary, "': ", std::strerror(errno));
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.flush();
    if (!out) {
      std::remove(temporary.c_str());
      return io_error("cannot write '", temporary, "': ", std::strerror(errno));
    }
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::remove(temporary.c_str());
    return io_error("cannot move the engine into place at '", path, "': ", ec.message());
  }
  return ok_status();
}

}  // namespace kiln::cli
