// One decode per read. The feed owns the recording's one LockEventDecoder: it decodes each sample
// once into a LockEvent, resolves what its event means (EventRole, from the probe table) once per
// event, and hands both to every consumer: the holder model, the lockdep replay, the contention
// table. A new analysis is a consumer, not another decoder. Internal to analyzer/.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_map>
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

// The context a sample ran in, as a key: a task's by thread, an interrupt's by CPU (an
// interrupt's samples carry the tid of the task it interrupted, and lockdep keeps interrupt
// contexts' locks apart from the task's). The idle tasks share tid 0: told apart by CPU too.
// A trylock's two probes are paired, and held locks are replayed, per such context.
uint64_t execution_context_key(const perf::Sample& sample, ExecContext context);

// A trylock as the feed pairs it, once for every consumer: the entry probe (it has the lock and
// the caller's stack) with the return probe of the same function on the same context (it says
// whether the lock was taken). `taken` is empty when no result came: another trylock entry on
// that context first, events lost, or the end of the recording.
struct TrylockOutcome {
  const perf::Sample& entry;  // the entry's sample, kept since (its raw payload is not)
  const LockEvent& entry_event;
  const EventRole& entry_role;
  std::optional<bool> taken;
};

// An analysis fed by LockEventFeed. It sees every record as a RecordVisitor does (comms, forks,
// losses, and every sample in on_sample), and each lock event, decoded, in on_lock_event. Read a
// recording into the feed, never into a consumer directly: a consumer decodes nothing itself.
class LockEventConsumer : public perf::RecordVisitor {
 public:
  // Once per read, after on_metadata: the decoder (event names, tracing data) and each event's role.
  virtual void on_lock_events_known(const LockEventDecoder& /*decoder*/, std::span<const EventRole> /*roles*/) {}
  // A sample that is a lock event, after on_sample for it; valid during the call. Trylock entries
  // and returns come here too, unpaired: consumers take trylocks from on_trylock.
  virtual void on_lock_event(const perf::Sample& /*sample*/, const LockEvent& /*event*/, const EventRole& /*role*/) {}
  // A trylock, its entry probe paired with the return probe that says whether it took the lock.
  virtual void on_trylock(const TrylockOutcome& /*trylock*/) {}
  // A trylock return probe with no entry before it on its context (the entry came before the
  // recording, or was lost): its lock is unknown.
  virtual void on_trylock_result_without_entry(const perf::Sample& /*sample*/) {}
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
    settle_all_trylocks();
    each([&](auto& c) { c.on_lost(r); });
  }
  void on_lost_samples(uint64_t lost, const perf::SampleId& id) override {
    settle_all_trylocks();
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

  // Call once after the read: trylock entries still waiting for their result are settled
  // without one.
  void finish() { settle_all_trylocks(); }

 private:
  // A trylock entry waiting for its return probe, with copies of what the entry sample pointed to
  // (the record it came from is gone by the time the return arrives).
  struct PendingTrylock {
    bool pending = false;
    perf::Sample sample;
    LockEvent event;
    EventRole role;
    std::vector<uint64_t> callchain;
  };

  void on_trylock_entry(const perf::Sample& sample, const LockEvent& event, const EventRole& role);
  void on_trylock_return(const perf::Sample& sample, const LockEvent& event, const EventRole& role);
  void settle(PendingTrylock& trylock, std::optional<bool> taken);
  void settle_all_trylocks();

  template <typename Call>
  void each(Call&& call) {
    for (LockEventConsumer* consumer : consumers_) call(*consumer);
  }

  std::vector<LockEventConsumer*> consumers_;
  std::unique_ptr<LockEventDecoder> decoder_;
  std::vector<EventRole> roles_;  // by event index
  // By context: a thread's task context, or a CPU's interrupt context (an interrupt's trylock
  // must not settle the trylock of the task it interrupted).
  std::unordered_map<uint64_t, PendingTrylock> trylocks_;
};

}  // namespace lockscope
