// kiln's error model: every fallible call returns a Status or a Result<T>.
// Nothing in the library throws across its API; Python turns a failed Status into a typed
// exception.
//
// A Status is one pointer: null means OK, so checking it costs one compare. A failure carries a
// code and a message that gathers context as it travels up (KILN_RETURN_IF_ERROR(expr, "while
// ...")). Status and Result are value types; they are not shared between threads while being
// modified.
#pragma once

#include <cstdint>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace kiln {

enum class StatusCode : uint8_t {
  kOk = 0,
  kInvalidArgument,  // the caller passed something malformed (bad input tensor, bad option)
  kNotFound,         // a named thing (file, archive entry, op, input) does not exist
  kOutOfRange,       // a value lies outside its declared range (a dim outside its symbol's range)
  kUnsupported,      // well-formed, but kiln does not handle it (yet): unknown op, old format
  kDataLoss,         // the bytes are corrupt or truncated (archive, engine, cache entry)
  kIoError,          // the operating system refused (open, mmap, write)
  kFailedPrecondition,  // the call is valid but not in this state
  kInternal,            // a bug in kiln
};

std::string_view status_code_name(StatusCode code);

// Concatenates its arguments with operator<<; used for messages ("expected ", a, ", found ", b).
template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return std::move(out).str();
}

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;

  bool ok() const { return state_ == nullptr; }
  StatusCode code() const { return state_ ? state_->code : StatusCode::kOk; }
  const std::string& message() const;
  // "Code: message", for logs and CLI output.
  std::string to_string() const;

  // Adds the context in front of the message: "while reading weights: entry 'x' is truncated".
  Status& with_context(std::string_view context);

 private:
  struct State {
    StatusCode code;
    std::string message;
  };
  std::unique_ptr<State> state_;
};

inline Status ok_status() {
  return Status();
}

template <typename... Args>
Status make_error(StatusCode code, const Args&... args) {
  return Status(code, str_cat(args...));
}
template <typename... Args>
Status invalid_argument(const Args&... args) {
  return make_error(StatusCode::kInvalidArgument, args...);
}
template <typename... Args>
Status not_found(const Args&... args) {
  return make_error(StatusCode::kNotFound, args...);
}
template <typename... Args>
Status out_of_range(const Args&... args) {
  return make_error(StatusCode::kOutOfRange, args...);
}
template <typename... Args>
Status unsupported(const Args&... args) {
  return make_error(StatusCode::kUnsupported, args...);
}
template <typename... Args>
Status data_loss(const Args&... args) {
  return make_error(StatusCode::kDataLoss, args...);
}
template <typename... Args>
Status io_error(const Args&... args) {
  return make_error(StatusCode::kIoError, args...);
}
template <typename... Args>
Status failed_precondition(const Args&... args) {
  return make_error(StatusCode::kFailedPrecondition, args...);
}
template <typename... Args>
Status internal_error(const Args&... args) {
  return make_error(StatusCode::kInternal, args...);
}

// Either a T or a failed Status. Accessing the value of a failed Result is a bug (checked in
// debug).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value)
      : data_(std::in_place_index<1>, std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : data_(std::in_place_index<0>, std::move(status)) {}  // NOLINT
  template <typename U, typename = std::enable_if_t<std::is_convertible_v<U&&, T> &&
                                                    !std::is_same_v<std::decay_t<U>, Status> &&
                                                    !std::is_same_v<std::decay_t<U>, T>>>
  Result(U&& value) : data_(std::in_place_index<1>, T(std::forward<U>(value))) {}  // NOLINT

  bool ok() const { return data_.index() == 1; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<0>(data_);
  }
  Status take_status() { return ok() ? Status() : std::move(std::get<0>(data_)); }

  T& value() & { return std::get<1>(data_); }
  const T& value() const& { return std::get<1>(data_); }
  T&& value() && { return std::get<1>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<Status, T> data_;
};

namespace internal {
inline Status to_status(Status status) {
  return status;
}
template <typename T>
Status to_status(Result<T>&& result) {
  return result.take_status();
}
inline Status& add_context(Status& status) {
  return status;
}
template <typename... Args>
Status& add_context(Status& status, const Args&... args) {
  return status.with_context(str_cat(args...));
}
}  // namespace internal

}  // namespace kiln

#define KILN_CONCAT_INNER(a, b) a##b
#define KILN_CONCAT(a, b) KILN_CONCAT_INNER(a, b)

// Returns the failed status of `expr` (a Status or Result) from the enclosing function, with the
// optional context arguments put in front of its message.
#define KILN_RETURN_IF_ERROR(expr, ...)                                                         \
  do {                                                                                          \
    ::kiln::Status kiln_status_ = ::kiln::internal::to_status((expr));                          \
    if (!kiln_status_.ok()) {                                                                   \
      return std::move(::kiln::internal::add_context(kiln_status_ __VA_OPT__(, ) __VA_ARGS__)); \
    }                                                                                           \
  } while (0)

#define KILN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr, ...)                                       \
  auto tmp = (expr);                                                                          \
  if (!tmp.ok()) {                                                                            \
    ::kiln::Status kiln_status_ = tmp.take_status();                                          \
    return std::move(::kiln::internal::add_context(kiln_status_ __VA_OPT__(, ) __VA_ARGS__)); \
  }                                                                                           \
  lhs = std::move(tmp).value()

// `KILN_ASSIGN_OR_RETURN(auto x, make_x(), "while making x");` declares or assigns from a Result,
// returning its failed status (with context) instead. It expands to more than one statement, so it
// cannot be the body of an unbraced if.
#define KILN_ASSIGN_OR_RETURN(lhs, expr, ...)                          \
  KILN_ASSIGN_OR_RETURN_IMPL(KILN_CONCAT(kiln_result_, __LINE__), lhs, \
                             expr __VA_OPT__(, ) __VA_ARGS__)
