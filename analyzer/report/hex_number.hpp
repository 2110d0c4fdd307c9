// Hex numbers as users type them on the command line: "0xffffffff83f84768", "2d200000",
// "-0x1000" for a signed offset (callers turn nullopt into an error that says which option), and
// as lockanalyze prints them.
#pragma once

#include <charconv>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace lockscope {

// "0x…" in lowercase hex, as every output prints addresses.
inline std::string hex(uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%" PRIx64, value);
  return text;
}

// The whole text as one unsigned hex number, with or without 0x; nullopt otherwise.
inline std::optional<uint64_t> parse_hex(std::string_view text) {
  if (text.starts_with("0x") || text.starts_with("0X")) text.remove_prefix(2);
  uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [stop, error] = std::from_chars(text.data(), end, value, 16);
  if (text.empty() || error != std::errc() || stop != end) return std::nullopt;
  return value;
}

// The same with an optional leading '-'.
inline std::optional<int64_t> parse_signed_hex(std::string_view text) {
  const bool negative = text.starts_with('-');
  if (negative) text.remove_prefix(1);
  auto magnitude = parse_hex(text);
  if (!magnitude || *magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  const auto value = static_cast<int64_t>(*magnitude);
  return negative ? -value : value;
}

}  // namespace lockscope
