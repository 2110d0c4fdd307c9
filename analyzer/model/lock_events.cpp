#include "lockscope/lock_events.hpp"

#include <array>

namespace lockscope {
namespace {

struct ContextName {
  ExecContext context;
  std::string_view name;
};
constexpr std::array kContextNames = {
    ContextName{ExecContext::task, "task"},
    ContextName{ExecContext::softirq, "softirq"},
    ContextName{ExecContext::hardirq, "hardirq"},
    ContextName{ExecContext::nmi, "nmi"},
};

// The payload field that holds the lock, in order of preference: the kprobe argument lockscope
// and the shared recordings use, then the lock tracepoints' field.
constexpr std::array<std::string_view, 2> kLockFieldNames = {"lock", "lock_addr"};

}  // namespace

std::string_view context_name(ExecContext context) {
  for (const auto& entry : kContextNames) {
    if (entry.context == context) return entry.name;
  }
  return "task";
}

// A hardirq can interrupt softirq processing and an NMI anything: the innermost context counts.
ExecContext context_from_flags(uint8_t flags) {
  if (flags & trace_flags::kNmi) return ExecContext::nmi;
  if (flags & trace_flags::kHardirq) return ExecContext::hardirq;
  if (flags & trace_flags::kSoftirq) return ExecContext::softirq;
  return ExecContext::task;
}

LockEventDecoder::LockEventDecoder(const perf::Metadata& metadata) {
  if (!metadata.tracing_data.empty()) {
    formats_ = perf::TraceFormats::parse(metadata.tracing_data, metadata.tracing_data_offset);
  }
  events_.resize(metadata.events.size());
  for (size_t i = 0; i < metadata.events.size(); ++i) {
    const perf::EventDesc& desc = metadata.events[i];
    ResolvedEvent& event = events_[i];
    event.name = desc.name;
    if (desc.attr.type == PERF_TYPE_TRACEPOINT) has_trace_events_ = true;
    if (desc.attr.type != PERF_TYPE_TRACEPOINT || formats_ == nullptr) continue;
    const perf::TraceEventFormat* format = formats_->find(static_cast<int>(desc.attr.config));
    if (format == nullptr) continue;
    if (event.name.empty()) event.name = format->full_name();
    for (std::string_view name : kLockFieldNames) {
      event.lock = format->field(name);
      if (event.lock.found) break;
    }
    event.ret = format->field("ret");
    event.contention_flags = format->field("flags");
    event.common_flags = format->field("common_flags");
    event.preempt_count = format->field("common_preempt_count");
    // A lock event names a lock, or is the return probe of a lock function (its `ret`).
    bool is_return_probe = format->field("__probe_ret_ip").found;
    event.is_lock_event = event.lock.found || (is_return_probe && event.ret.found);
    if (!event.lock.found) event.contention_flags = {};
  }
}

LockEventDecoder::EventsSummary LockEventDecoder::events_summary() const {
  EventsSummary summary;
  summary.events = events_.size();
  summary.formats_missing = has_trace_events_ && !has_tracing_data();
  for (const auto& event : events_) {
    if (!event.is_lock_event) summary.other_names.push_back(event.name.empty() ? "unnamed" : event.name);
  }
  return summary;
}

std::string explain_no_lock_events(const LockEventDecoder::EventsSummary& events, uint64_t samples) {
  const std::string record_lock_events =
      ": nothing to report; record lock events with `lockrec -- COMMAND` (kprobes) or "
      "`perf record -e lock:contention_begin,lock:contention_end -g -a -- COMMAND`";
  if (samples == 0) {
    return "the recording holds no samples (" + std::to_string(events.events) + " events, no sample of any)" +
           record_lock_events;
  }
  std::string counted = std::to_string(samples) + " samples";
  if (events.formats_missing) {
    return "the recording's " + counted +
           " cannot be read as lock events: it has no event formats "
           "(the tracing data perf writes last is missing: perf was killed or the file cut short); "
           "record again and let perf finish (stop it with ^C, not SIGKILL, with room on the disk)";
  }
  std::string names;
  for (const auto& name : events.other_names) names += (names.empty() ? "" : ", ") + name;
  return "the recording's " + counted + " are of events that are not lock events (" + names + ")" + record_lock_events;
}

const LockEvent* LockEventDecoder::decode(const perf::Sample& sample) {
  if (sample.event == nullptr || sample.event->index >= events_.size()) return nullptr;
  const ResolvedEvent& event = events_[sample.event->index];
  if (!event.is_lock_event) return nullptr;
  LockEvent& out = current_;
  out = LockEvent{};
  out.sample = &sample;
  out.event_name = event.name;
  out.lock = event.lock.read_unsigned(sample.raw);
  out.ret = event.ret.read_signed(sample.raw);
  if ((event.lock.found && !out.lock) || (event.ret.found && !out.ret)) ++short_payloads_;
  if (auto flags = event.contention_flags.read_unsigned(sample.raw)) {
    out.contention_flags = static_cast<uint32_t>(*flags);
  }
  uint8_t flags = static_cast<uint8_t>(event.common_flags.read_unsigned(sample.raw).value_or(0));
  out.common_flags = flags;
  out.preempt_count = static_cast<uint8_t>(event.preempt_count.read_unsigned(sample.raw).value_or(0));
  out.context = context_from_flags(flags);
  out.irqs_off = (flags & trace_flags::kIrqsOff) != 0;
  return &out;
}

}  // namespace lockscope
