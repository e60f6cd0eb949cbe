#include "base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace kiln {

namespace {

// Closes a descriptor when the scope ends; the mapping outlives it.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

MappedFile::~MappedFile() {
  reset();
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_(std::exchange(other.mapped_, false)),
      path_(std::move(other.path_)) {}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_ = std::exchange(other.mapped_, false);
    path_ = std::move(other.path_);
  }
  return *this;
}

void MappedFile::reset() {
  if (mapped_) ::munmap(const_cast<char*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
  mapped_ = false;
}

Result<MappedFile> MappedFile::open(const std::string& path) {
  int raw_fd;
  do {
    raw_fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (raw_fd < 0 && errno == EINTR);
  if (raw_fd < 0) {
    const int error = errno;
    if (error == ENOENT) return not_found("cannot open '", path, "': ", std::strerror(error));
    return io_error("cannot open '", path, "': ", std::strerror(error));
  }
  FileDescriptor fd(raw_fd);
  struct stat info;
  if (::fstat(fd.get(), &info) != 0) {
    return io_error("cannot stat '", path, "': ", std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    return io_error("cannot map '", path, "': expected a regular file, found ",
                    S_ISDIR(info.st_mode) ? "a directory" : "another kind of file");
  }
  MappedFile file;
  file.path_ = path;
  file.size_ = static_cast<size_t>(info.st_size);
  if (file.size_ == 0) return file;  // mmap refuses length 0
  void* data = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (data == MAP_FAILED) {
    const int error = errno;
    file.size_ = 0;
    return io_error("cannot map '", path, "': ", std::strerror(error));
  }
  file.data_ = static_cast<const char*>(data);
  file.mapped_ = true;
  return file;
}

}  // namespace kiln
