// Lock events out of samples: which samples are lock events, and the facts of each (lock address,
// return value, execution context, irqs-off) read from the tracepoint/kprobe payload by field name.
// Fields are resolved once per event; every read is checked against the payload.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lockscope/perf_data.hpp"
#include "lockscope/trace_formats.hpp"

namespace lockscope {

enum class ExecContext : uint8_t { task, softirq, hardirq, nmi };
std::string_view context_name(ExecContext context);

// TRACE_FLAG_* bits of common_flags (kernel/trace/trace.h).
namespace trace_flags {
constexpr uint8_t kIrqsOff = 0x01;
constexpr uint8_t kHardirq = 0x08;
constexpr uint8_t kSoftirq = 0x10;
constexpr uint8_t kNmi = 0x40;
constexpr uint8_t kBhOff = 0x80;
}  // namespace trace_flags

// lock:contention_begin's `flags`: the kind of lock waited for (LCB_F_* of the kernel's
// include/trace/events/lock.h).
namespace contention_flags {
inline constexpr uint32_t kSpin = 1u << 0, kRead = 1u << 1, kWrite = 1u << 2, kRt = 1u << 3, kPercpu = 1u << 4,
                          kMutex = 1u << 5;
}  // namespace contention_flags

ExecContext context_from_flags(uint8_t common_flags);

struct LockEvent {
  const perf::Sample* sample = nullptr;
  std::string_view event_name;               // as perf names it: "probe:_raw_spin_lock"
  std::optional<uint64_t> lock;              // `lock` (kprobe argument) or `lock_addr` (contention)
  std::optional<int64_t> ret;                // `ret` of a return probe or of lock:contention_end
  std::optional<uint32_t> contention_flags;  // `flags` of lock:contention_begin
  ExecContext context = ExecContext::task;
  bool irqs_off = false;
  uint8_t common_flags = 0;
  uint8_t preempt_count = 0;
};

class LockEventDecoder {
 public:
  // Parses the recording's tracing data (if any) and resolves the fields of every event once.
  explicit LockEventDecoder(const perf::Metadata& metadata);

  // The lock event in this sample, or nullptr when its event is not a lock event. The result is
  // valid until the next call.
  const LockEvent* decode(const perf::Sample& sample);

  // Name of each event of the recording (index = EventDesc::index), filled from the trace format
  // where perf.data had no name (pipe mode).
  // An event announced after the metadata (pipe mode) has no name here: empty.
  const std::string& event_name(size_t index) const {
    static const std::string kUnknown;
    return index < events_.size() ? events_[index].name : kUnknown;
  }
  bool has_tracing_data() const { return formats_ != nullptr; }
  const perf::TraceFormats* formats() const { return formats_.get(); }
  // Lock events whose payload was too short for a field the format promises (hostile or cut).
  uint64_t short_payloads() const { return short_payloads_; }
  // What the recording's events are, kept by value for explain_no_lock_events after the read.
  struct EventsSummary {
    size_t events = 0;
    bool formats_missing = false;          // tracepoints or kprobes, but no tracing data
    std::vector<std::string> other_names;  // events that are not lock events ("unnamed" if so)
  };
  EventsSummary events_summary() const;

 private:
  struct ResolvedEvent {
    std::string name;
    bool is_lock_event = false;
    perf::TraceField lock, ret, contention_flags, common_flags, preempt_count;
  };

  std::unique_ptr<perf::TraceFormats> formats_;
  std::vector<ResolvedEvent> events_;
  bool has_trace_events_ = false;  // tracepoints or kprobes: they need the tracing data
  LockEvent current_;
  uint64_t short_payloads_ = 0;
};

// Why a recording with these events and this many samples gave no lock event, and what to record
// instead: one line for the user (a damaged file, events that are not lock events, or nothing).
std::string explain_no_lock_events(const LockEventDecoder::EventsSummary& events, uint64_t samples);

}  // namespace lockscope
