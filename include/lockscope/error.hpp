// The one error type of lockscope. It carries where the problem is (file, byte offset, record or
// section) and what was expected, so the command line can print a single line that tells the user
// what went wrong, where, and what to do. Inner code throws with what it knows (usually an offset and
// what it expected); outer code adds the file name while the exception passes through.
#pragma once

#include <cstdint>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>

namespace lockscope {

class Error : public std::exception {
 public:
  explicit Error(std::string problem) : problem_(std::move(problem)) { render(); }

  // Builder-style setters, so a throw site reads as one sentence:
  //   throw Error("record size 0").at(offset).in("PERF_RECORD_SAMPLE").hint("the file is corrupt")
  Error& at(uint64_t offset) {
    offset_ = offset;
    render();
    return *this;
  }
  Error& in(std::string context) {
    context_ = std::move(context);
    render();
    return *this;
  }
  Error& hint(std::string what_to_do) {
    hint_ = std::move(what_to_do);
    render();
    return *this;
  }
  // Only the first file set sticks: the innermost layer knows the real file.
  Error& file(std::string path) {
    if (file_.empty()) file_ = std::move(path);
    render();
    return *this;
  }

  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& problem() const { return problem_; }
  const std::string& file_name() const { return file_; }
  std::optional<uint64_t> offset() const { return offset_; }
  const std::string& context() const { return context_; }

 private:
  void render();

  std::string problem_;
  std::string file_;
  std::optional<uint64_t> offset_;
  std::string context_;
  std::string hint_;
  std::string message_;
};

inline void Error::render() {
  std::string out;
  if (!file_.empty()) out += file_ + ": ";
  if (offset_) {
    char buf[40];
    snprintf(buf, sizeof buf, "offset %llu (0x%llx): ", static_cast<unsigned long long>(*offset_),
             static_cast<unsigned long long>(*offset_));
    out += buf;
  }
  if (!context_.empty()) out += context_ + ": ";
  out += problem_;
  if (!hint_.empty()) out += "; " + hint_;
  message_ = std::move(out);
}

}  // namespace lockscope
