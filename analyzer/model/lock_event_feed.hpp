// One decode per read. The feed owns the recording's one LockEventDecoder: it decodes each sample
// once into a LockEvent, resolves what its event means (EventRole, from the probe table) once per
// event, and hands both to every consumer: the holder model, the lockdep replay, the contention
// table. A new analysis is a consumer, not another decoder. Internal to analyzer/.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "lockscope/lock_events.hpp"
#include "lockscope/perf_data.hpp"
#include "lockscope/probe_table.hpp"

namespace lockscope {

// What an event of the recording means to the analyses, resolved once per event.
struct EventRole {
  enum class Type : uint8_t {
    ignored,
    acquire,
    release,
    trylock_entry,
    trylock_return,
    contention_begin,
    contention_end
  };
  Type type = Type::ignored;
  const probes::ProbeRow* row = nullptr;
};
EventRole role_of_event(std::string_view event_name);

// An analysis fed by LockEventFeed. It sees every record as a RecordVisitor does (comms, forks,
// losses, and every sample in on_sample), and each lock event, decoded, in on_lock_event. Read a
// recording into the feed, never into a consumer directly: a consumer decodes nothing itself.
class LockEventConsumer : public perf::RecordVisitor {
 public:
  // Once per read, after on_metadata: the decoder (event names, tracing data) and each event's role.
  virtual void on_lock_events_known(const LockEventDecoder& /*decoder*/, std::span<const EventRole> /*roles*/) {}
  // A sample that is a lock event, after on_sample for it; valid during the call.
  virtual void on_lock_event(const perf::Sample& /*sample*/, const LockEvent& /*event*/, const EventRole& /*role*/) {}
};

class LockEventFeed final : public perf::RecordVisitor {
 public:
  // Null consumers (an optional analysis that is not there) are left out.
  explicit LockEventFeed(std::vector<LockEventConsumer*> consumers) : consumers_(std::move(consumers)) {
    std::erase(consumers_, nullptr);
  }

  void on_metadata(const perf::Metadata& metadata) override;
  void on_sample(const perf::Sample& sample) override;
  void on_comm(const perf::CommRecord& r) override {
    each([&](auto& c) { c.on_comm(r); });
  }
  void on_fork(const perf::TaskRecord& r) override {
    each([&](auto& c) { c.on_fork(r); });
  }
  void on_exit(const perf::TaskRecord& r) override {
    each([&](auto& c) { c.on_exit(r); });
  }
  void on_mmap(const perf::MmapRecord& r) override {
    each([&](auto& c) { c.on_mmap(r); });
  }
  void on_lost(const perf::LostRecord& r) override {
    each([&](auto& c) { c.on_lost(r); });
  }
  void on_lost_samples(uint64_t lost, const perf::SampleId& id) override {
    each([&](auto& c) { c.on_lost_samples(lost, id); });
  }
  void on_throttle(const perf::ThrottleRecord& r) override {
    each([&](auto& c) { c.on_throttle(r); });
  }
  bool wants_more() const override {
    return std::any_of(consumers_.begin(), consumers_.end(),
                       [](const LockEventConsumer* c) { return c->wants_more(); });
  }

  const LockEventDecoder* decoder() const { return decoder_.get(); }

 private:
  template <typename Call>
  void each(Call&& call) {
    for (LockEventConsumer* consumer : consumers_) call(*consumer);
  }

  std::vector<LockEventConsumer*> consumers_;
  std::unique_ptr<LockEventDecoder> decoder_;
  std::vector<EventRole> roles_;  // by event index
};

}  // namespace lockscope
