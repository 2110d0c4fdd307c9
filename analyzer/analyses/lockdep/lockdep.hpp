// Offline lockdep: the kernel lock validator's rules (kernel/locking/lockdep.c) applied to a
// recording of a stock kernel. Usage states per lock (read and write apart) give the irq-safety
// findings; a per-thread (and per-interrupt-context) replay of acquisitions and releases in time
// order gives the lock-order graph, whose cycles and irq-safe -> irq-unsafe paths are findings.
// Memory grows with distinct locks, order edges and first stacks, never with samples.
// Internal to analyzer/.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "holder_model.hpp"
#include "lock_event_feed.hpp"
#include "lockscope/lock_events.hpp"
#include "lockscope/perf_data.hpp"
#include "thread_names.hpp"

namespace lockscope::lockdep {

// lockdep's usage bits (kernel/locking/lockdep_states.h), read and write apart.
enum class Usage : uint8_t {
  in_hardirq_w,
  in_hardirq_r,
  hardirq_on_w,
  hardirq_on_r,
  in_softirq_w,
  in_softirq_r,
  softirq_on_w,
  softirq_on_r,
};
constexpr size_t kUsageCount = 8;
std::string_view usage_name(Usage usage);  // "IN-HARDIRQ-W", as lockdep prints it
constexpr uint8_t usage_bit(Usage usage) { return static_cast<uint8_t>(1u << static_cast<unsigned>(usage)); }

enum class FindingKind : uint8_t {
  irq_inconsistent,
  softirq_inconsistent,
  lock_order_cycle,
  irq_safe_to_unsafe,
  softirq_safe_to_unsafe,
};
std::string_view kind_name(FindingKind kind);  // "irq-inconsistent", as the JSON spells it

// One fact that proves a finding: a lock's first acquisition with a usage, or an order edge (the
// first time `to` was acquired while `from` was held).
struct Evidence {
  enum class Type : uint8_t { usage, edge };
  Type type = Type::usage;
  std::string usage;       // usage evidence: "IN-HARDIRQ-W"
  uint64_t lock = 0;       // usage evidence: the lock; edge: the lock acquired
  uint64_t held_lock = 0;  // edge: the lock that was held
  std::string holder;      // the thread or interrupt context: "insmod[312]", "[hardirq] cpu 1 ..."
  uint64_t time_ns = 0;
  uint64_t last_time_ns = 0;         // edge: when it was last seen
  uint64_t count = 0;                // acquisitions with this usage, or times the edge was seen
  std::vector<uint64_t> stack;       // first stack of the usage, or of the acquisition of `lock`
  std::vector<uint64_t> held_stack;  // edge: the acquisition of `held_lock` that was held
};

struct FindingLock {
  uint64_t address = 0;
  std::string kind;        // access kinds seen: "spinlock", "rwlock-read,rwlock-write"
  std::string lock_class;  // class findings: the class of this dynamic lock
};

struct Finding {
  FindingKind kind = FindingKind::irq_inconsistent;
  std::string title;               // lockdep's words: "inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage"
  std::vector<FindingLock> locks;  // inconsistency: the lock; cycle: in cycle order; safe, unsafe
  std::vector<Evidence> evidence;
  std::vector<std::string> holders;  // inconsistency: every holder of the lock (the sharing model's labels)
  // Why the finding may not be real, or "". A cycle whose edges were all first made at one pair of
  // call sites, and never all within one stretch of time, is what one nesting walk (parent then
  // child, spin_lock_nested()) looks like when freed objects' lock addresses are reused: lockdep
  // tells nesting by subclass, which a stock kernel's probes cannot see.
  std::string caveat;
};

struct Options {
  size_t max_depth = 48;               // held locks per context, lockdep's MAX_LOCK_DEPTH
  size_t max_edges = size_t{1} << 20;  // order edges kept; more are counted, not stored
  size_t max_cycle_length = 8;         // locks in one reported cycle
  size_t max_findings_per_kind = 32;
  size_t cycle_search_steps = 1'000'000;  // DFS steps over all strong components
};

struct Stats {
  uint64_t acquisitions = 0;
  uint64_t releases = 0;
  uint64_t unmatched_releases = 0;         // no acquisition of the lock seen in any context
  uint64_t released_by_other_context = 0;  // held by another thread or context (hand-off, up_read by another task)
  uint64_t recursive_reads = 0;            // a recursive read of a lock the context already read-holds
  uint64_t reacquired_while_held = 0;      // taken again while held: the release was missed
  uint64_t held_elsewhere_when_taken = 0;  // an exclusive lock taken while another context "held" it
  uint64_t stale_spin_holds = 0;           // a spinlock "held" over a second: the release was missed
  uint64_t depth_overflows = 0;
  uint64_t trylocks_without_result = 0;  // not replayed: taken or not is unknown
  uint64_t replay_resets = 0;            // lost events: what was held is no longer known
  uint64_t edges = 0;
  uint64_t unconfirmed_edges = 0;  // made only by stale holds: left out of the order graph
  uint64_t edges_dropped = 0;
  uint64_t findings_dropped = 0;
  bool cycle_search_truncated = false;
};

class LockdepReplay final : public LockEventConsumer {
 public:
  explicit LockdepReplay(Options options = {});
  ~LockdepReplay() override;
  LockdepReplay(const LockdepReplay&) = delete;
  LockdepReplay& operator=(const LockdepReplay&) = delete;

  void on_lock_events_known(const LockEventDecoder& decoder, std::span<const EventRole> roles) override;
  void on_comm(const perf::CommRecord& comm) override;
  void on_fork(const perf::TaskRecord& task) override;
  void on_lock_event(const perf::Sample& sample, const LockEvent& event, const EventRole& role) override;
  void on_trylock(const TrylockOutcome& trylock) override;
  void on_lost(const perf::LostRecord& lost) override;
  void on_lost_samples(uint64_t lost, const perf::SampleId& id) override;

  // Call once after the read: works out the findings, ordered by kind. `holders` (the sharing
  // model of the same recording) names every holder of an inconsistent lock; without it that
  // list stays empty.
  void finish(const model::HolderModel* holders = nullptr);
  const std::vector<Finding>& findings() const { return findings_; }

  // Dynamic locks of one class as lockdep sees them (it checks classes, not instances): after
  // finish(), joins the usage states of the locks `class_of` puts in one class (it gets a lock's
  // address and one of its stacks, and answers "" for a lock that has no class) and adds the
  // inconsistencies between different locks of a class.
  using ClassOf = std::function<std::string(uint64_t address, std::span<const uint64_t> stack)>;
  void add_class_findings(const ClassOf& class_of);
  // What a reader should know about the replay: skipped order analysis, unmatched releases.
  std::vector<std::string> notes() const;
  const Stats& stats() const { return stats_; }

 private:
  struct State;
  Options options_;
  Stats stats_;
  std::unique_ptr<State> state_;
  std::vector<Finding> findings_;
};

}  // namespace lockscope::lockdep
