// Tracepoint and kprobe event formats from a recording's tracing data (the TRACING_DATA feature or
// the pipe-mode HEADER_TRACING_DATA record), parsed by libtraceevent. Fields are resolved by name
// once per event type; reading a field checks it against the payload.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lockscope::perf {

struct TraceField {
  uint32_t offset = 0;
  uint32_t size = 0;
  bool is_signed = false;
  bool found = false;

  // The field's value, or nothing when the field is absent, not 1/2/4/8 bytes, or runs past the
  // payload (a hostile or truncated sample). Inline: a few of these run for every lock event.
  std::optional<uint64_t> read_unsigned(std::span<const std::byte> payload) const {
    if (!found || offset > payload.size() || size > payload.size() - offset) return std::nullopt;
    const std::byte* at = payload.data() + offset;
    switch (size) {
      case 1: return load<uint8_t>(at);
      case 2: return load<uint16_t>(at);
      case 4: return load<uint32_t>(at);
      case 8: return load<uint64_t>(at);
      default: return std::nullopt;
    }
  }
  std::optional<int64_t> read_signed(std::span<const std::byte> payload) const {
    auto value = read_unsigned(payload);
    if (!value) return std::nullopt;
    switch (size) {
      case 1: return static_cast<int8_t>(*value);
      case 2: return static_cast<int16_t>(*value);
      case 4: return static_cast<int32_t>(*value);
      default: return static_cast<int64_t>(*value);
    }
  }

 private:
  template <typename T>
  static uint64_t load(const std::byte* at) {
    T value;
    std::memcpy(&value, at, sizeof value);
    return value;
  }
};

struct TraceEventFormat {
  int id = 0;
  std::string system;      // "lock", "probe", "lockrec", "sched"
  std::string name;        // "contention_begin", "_raw_spin_lock"
  void* handle = nullptr;  // the libtraceevent event, for field lookups

  std::string full_name() const { return system + ":" + name; }
  TraceField field(std::string_view field_name) const;  // common fields too
};

class TraceFormats {
 public:
  // Throws Error naming the offset (file_offset + position in the blob) when the blob is malformed.
  static std::unique_ptr<TraceFormats> parse(std::span<const std::byte> blob, uint64_t file_offset);
  ~TraceFormats();
  TraceFormats(const TraceFormats&) = delete;
  TraceFormats& operator=(const TraceFormats&) = delete;

  const TraceEventFormat* find(int id) const;
  const std::vector<TraceEventFormat>& events() const { return events_; }
  const std::string& version() const { return version_; }
  // Formats libtraceevent could not parse (their events are then not decoded), for the summary.
  const std::vector<std::string>& unparsed() const { return unparsed_; }

 private:
  TraceFormats() = default;
  void* tep_ = nullptr;
  std::string version_;
  std::vector<TraceEventFormat> events_;  // sorted by id
  std::vector<std::string> unparsed_;
};

}  // namespace lockscope::perf
