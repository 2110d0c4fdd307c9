// Feeding contention statistics from a recording: a lock-event consumer that turns
// lock:contention_begin/end samples into ContentionStats events. Shared by the contention command
// and the report.
#pragma once

#include <cstdint>
#include <vector>

#include "contention_stats.hpp"
#include "lock_event_feed.hpp"
#include "lockscope/lock_events.hpp"
#include "lockscope/perf_data.hpp"

namespace lockscope::contention {

class ContentionVisitor final : public LockEventConsumer {
 public:
  explicit ContentionVisitor(ContentionStats& stats) : stats_(stats) {}

  void on_lock_event(const perf::Sample& sample, const LockEvent& event, const EventRole& role) override {
    const bool is_begin = role.type == EventRole::Type::contention_begin;
    if ((!is_begin && role.type != EventRole::Type::contention_end) || !event.lock) return;
    stats_.frames_of(sample.callchain, frames_);
    ContentionEvent contention{sample.time, sample.tid, *event.lock, event.contention_flags.value_or(0), frames_};
    if (is_begin) {
      stats_.begin(contention);
      ++begins_;
    } else {
      stats_.end(contention);
      ++ends_;
    }
  }
  uint64_t begins() const { return begins_; }
  uint64_t ends() const { return ends_; }

 private:
  ContentionStats& stats_;
  std::vector<Frame> frames_;  // reused for every event
  uint64_t begins_ = 0, ends_ = 0;
};

}  // namespace lockscope::contention
