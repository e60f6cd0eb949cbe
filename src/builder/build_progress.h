// Progress of a long engine build, for the CLI (stderr) and Python (logging). Phases are reported
// only once the build has taken longer than a second, so quick builds stay quiet.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace kiln::builder {

class BuildProgress {
 public:
  using Sink = std::function<void(std::string_view)>;
  explicit BuildProgress(Sink sink = nullptr, std::string name = "")
      : sink_(std::move(sink)), name_(std::move(name)), start_(Clock::now()) {}

  // "planning", "compiling 42 kernels for sm_90", ...: shown once a second has passed.
  void phase(std::string_view what) {
    if (!sink_) return;
    pending_ = std::string(what);
    if (seconds() >= 1.0) flush();
  }
  // Called when the build ends: reports the total if anything was shown or it took over 1 s.
  void done() {
    if (!sink_) return;
    if (seconds() >= 1.0) {
      if (!pending_.empty()) flush();
      sink_(prefix() + "built in " + format_seconds(seconds()));
    }
  }
  double seconds() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }

 private:
  using Clock = std::chrono::steady_clock;
  std::string prefix() const { return name_.empty() ? "" : "engine '" + name_ + "': "; }
  static std::string format_seconds(double s) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "%.1f s", s);
    return buffer;
  }
  void flush() {
    sink_(prefix() + pending_ + " (" + format_seconds(seconds()) + ")");
    pending_.clear();
  }

  Sink sink_;
  std::string name_;
  Clock::time_point start_;
  std::string pending_;
};

}  // namespace kiln::builder
