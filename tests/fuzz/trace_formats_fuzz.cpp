// libFuzzer target: the input is a TRACING_DATA blob, parsed by TraceFormats (and libtraceevent
// behind it); every parsed event's fields are then looked up and read the way LockEventDecoder does.
#include <array>
#include <string_view>

#include "lockscope/error.hpp"
#include "lockscope/trace_formats.hpp"

namespace {

// The fields LockEventDecoder asks for.
constexpr std::array<std::string_view, 8> kFieldNames = {
    "lock", "lock_addr", "ret", "flags", "common_flags", "common_preempt_count", "__probe_ret_ip", "common_type"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const std::byte> blob(reinterpret_cast<const std::byte*>(data), size);
  try {
    auto formats = lockscope::perf::TraceFormats::parse(blob, 0);
    uint64_t checksum = 0;
    for (const auto& format : formats->events()) {
      if (formats->find(format.id) == nullptr) abort();  // every parsed event must be found by id
      checksum ^= format.full_name().size();
      for (std::string_view name : kFieldNames) {
        lockscope::perf::TraceField field = format.field(name);
        // A payload cut from the blob itself: reads must stay inside it whatever the field says.
        checksum ^= field.read_unsigned(blob.first(std::min<size_t>(size, 64))).value_or(0);
        checksum ^= static_cast<uint64_t>(field.read_signed(blob).value_or(0));
      }
    }
    for (const auto& name : formats->unparsed()) checksum ^= name.size();
    (void)checksum;
  } catch (const lockscope::Error&) {
    // Malformed input: one clear error is the right answer.
  }
  return 0;
}
