// A bounds-checked reader over a span of bytes that knows the span's position in the file, so every
// overrun becomes an Error naming the file offset and what was being read. Internal to analyzer/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "lockscope/error.hpp"
#include "lockscope/perf_data.hpp"

namespace lockscope::perf {

class ByteCursor {
 public:
  // The context is kept as a view: it must outlive the cursor (a literal or a static string).
  ByteCursor(Bytes bytes, uint64_t file_offset, std::string_view context)
      : bytes_(bytes), base_offset_(file_offset), context_(context) {}
  template <size_t N>
  ByteCursor(Bytes bytes, uint64_t file_offset, const char (&context)[N])
      : ByteCursor(bytes, file_offset, std::string_view(context, N - 1)) {}
  ByteCursor(Bytes bytes, uint64_t file_offset, std::string&& context) = delete;

  size_t remaining() const { return bytes_.size() - position_; }
  size_t position() const { return position_; }
  uint64_t file_offset() const { return base_offset_ + position_; }
  bool at_end() const { return position_ == bytes_.size(); }

  template <typename T>
  T read() {
    require(sizeof(T), "a value");
    T value = load<T>(bytes_.data() + position_);
    position_ += sizeof(T);
    return value;
  }
  uint32_t u32() { return read<uint32_t>(); }
  uint64_t u64() { return read<uint64_t>(); }

  Bytes take(uint64_t count, std::string_view what) {
    require(count, what);
    Bytes out = bytes_.subspan(position_, count);
    position_ += count;
    return out;
  }
  void skip(uint64_t count, std::string_view what) { take(count, what); }

  // Counts from the file multiply into sizes: check with a division, never an overflowing product.
  void require_array(uint64_t count, uint64_t element_size, std::string_view what) const {
    if (element_size != 0 && count > remaining() / element_size) [[unlikely]] {
      fail_short_array(count, element_size, what);
    }
  }

  // perf's padded string: u32 length (including NUL padding), then the bytes.
  std::string_view perf_string(std::string_view what) {
    uint32_t length = u32();
    Bytes raw = take(length, what);
    const char* chars = reinterpret_cast<const char*>(raw.data());
    return std::string_view(chars, strnlen(chars, raw.size()));
  }

  // A NUL-terminated string; a missing NUL is an error.
  std::string_view c_string(std::string_view what) {
    const char* start = reinterpret_cast<const char*>(bytes_.data() + position_);
    size_t length = strnlen(start, remaining());
    if (length == remaining()) {
      fail(std::string(what) + " is not NUL-terminated (expected a NUL before the end)");
    }
    position_ += length + 1;
    return std::string_view(start, length);
  }

  // Runs for every field of every record: the check inlines, the message is built out of line.
  void require(uint64_t count, std::string_view what) const {
    if (count > remaining()) [[unlikely]]
      fail_short(count, what);
  }

  [[noreturn]] void fail(std::string problem) const {
    throw Error(std::move(problem)).at(file_offset()).in(std::string(context_));
  }

 private:
  [[noreturn, gnu::cold, gnu::noinline]] void fail_short(uint64_t count, std::string_view what) const {
    fail("expected " + std::to_string(count) + " bytes for " + std::string(what) + ", only " +
         std::to_string(remaining()) + " remain");
  }
  [[noreturn, gnu::cold, gnu::noinline]] void fail_short_array(uint64_t count, uint64_t element_size,
                                                               std::string_view what) const {
    fail(std::string(what) + ": " + std::to_string(count) + " entries of " + std::to_string(element_size) +
         " bytes, but only " + std::to_string(remaining()) + " bytes remain");
  }

  Bytes bytes_;
  size_t position_ = 0;
  uint64_t base_offset_;
  std::string_view context_;
};

}  // namespace lockscope::perf
