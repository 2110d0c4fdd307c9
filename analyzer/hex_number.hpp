// Hex numbers as users type them on the command line: "0xffffffff83f84768", "2d200000",
// "-0x1000" for a signed offset. Callers turn nullopt into an error that says which option.
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

namespace lockscope {

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
