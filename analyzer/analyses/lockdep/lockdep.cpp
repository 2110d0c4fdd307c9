#include "lockdep.hpp"

#include <algorithm>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/strong_components.hpp>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <utility>

#include "lockscope/probe_table.hpp"

namespace lockscope::lockdep {
namespace {

using model::Access;

constexpr std::array<std::string_view, kUsageCount> kUsageNames = {
    "IN-HARDIRQ-W", "IN-HARDIRQ-R", "HARDIRQ-ON-W", "HARDIRQ-ON-R",
    "IN-SOFTIRQ-W", "IN-SOFTIRQ-R", "SOFTIRQ-ON-W", "SOFTIRQ-ON-R",
};

struct KindName {
  FindingKind kind;
  std::string_view name;
};
constexpr std::array kKindNames = {
    KindName{FindingKind::irq_inconsistent, "irq-inconsistent"},
    KindName{FindingKind::softirq_inconsistent, "softirq-inconsistent"},
    KindName{FindingKind::lock_order_cycle, "lock-order-cycle"},
    KindName{FindingKind::irq_safe_to_unsafe, "irq-safe-to-unsafe"},
    KindName{FindingKind::softirq_safe_to_unsafe, "softirq-safe-to-unsafe"},
};

// Flavours whose entry point disables interrupts or bottom halves before it takes the lock: the
// probe at the entry still sees them enabled, but the lock is held with them off.
struct FlavourMasking {
  probes::Flavour flavour;
  bool disables_irqs;
  bool disables_bh;
};
constexpr std::array kFlavourMasking = {
    FlavourMasking{probes::Flavour::irq, true, true},
    FlavourMasking{probes::Flavour::irqsave, true, true},
    FlavourMasking{probes::Flavour::irqsave_nested, true, true},
    FlavourMasking{probes::Flavour::bh, false, true},
    FlavourMasking{probes::Flavour::trylock_bh, false, true},
};

FlavourMasking masking_of(probes::Flavour flavour) {
  for (const auto& entry : kFlavourMasking) {
    if (entry.flavour == flavour) return entry;
  }
  return {flavour, false, false};
}

// The two interrupt classes lockdep checks: the context that makes a lock "used in" it, its
// usage bits, and the findings and words for it.
struct IrqClass {
  std::string_view name;  // "HARDIRQ"
  ExecContext context;
  Usage in_w, in_r, on_w, on_r;
  FindingKind inconsistent, safe_to_unsafe;
};
constexpr std::array kIrqClasses = {
    IrqClass{"HARDIRQ", ExecContext::hardirq, Usage::in_hardirq_w, Usage::in_hardirq_r, Usage::hardirq_on_w,
             Usage::hardirq_on_r, FindingKind::irq_inconsistent, FindingKind::irq_safe_to_unsafe},
    IrqClass{"SOFTIRQ", ExecContext::softirq, Usage::in_softirq_w, Usage::in_softirq_r, Usage::softirq_on_w,
             Usage::softirq_on_r, FindingKind::softirq_inconsistent, FindingKind::softirq_safe_to_unsafe},
};

// Which (used in the interrupt, enabled) pairs deadlock, as lockdep's mark_lock_irq() checks them:
// a writer in the interrupt against any holder with it enabled, a reader in the interrupt against
// a writer with it enabled. Readers on both sides do not: an interrupt's reader never waits for
// another reader. Most telling pair first.
struct UsageConflict {
  Usage IrqClass::*in;
  Usage IrqClass::*on;
};
constexpr std::array kUsageConflicts = {
    UsageConflict{&IrqClass::in_w, &IrqClass::on_w},
    UsageConflict{&IrqClass::in_w, &IrqClass::on_r},
    UsageConflict{&IrqClass::in_r, &IrqClass::on_w},
};

// lockdep's dependency types (Documentation/locking/lockdep-design.rst): the held lock exclusive
// (E) or shared (S), the acquired one a recursive reader (R) or not (N).
constexpr uint8_t kEdgeER = 1, kEdgeEN = 2, kEdgeSR = 4, kEdgeSN = 8;
constexpr uint8_t kIntoRecursive = kEdgeER | kEdgeSR;
constexpr uint8_t kFromShared = kEdgeSR | kEdgeSN;
constexpr std::array<uint8_t, 4> kEdgeTypes = {kEdgeER, kEdgeEN, kEdgeSR, kEdgeSN};

constexpr std::string_view kReusedAddressesCaveat =
    "every edge was first made at the same two call sites, and the orders were never seen at the same "
    "time: one walk nesting two locks of a kind (spin_lock_nested(), parent then child) over objects "
    "freed and reallocated at the same addresses looks like this; lockdep, which tells nesting "
    "levels apart, would not report it";

// By kind, and within a kind those with a caveat last.
void sort_findings(std::vector<Finding>& findings) {
  std::stable_sort(findings.begin(), findings.end(), [](const Finding& a, const Finding& b) {
    return std::pair(a.kind, !a.caveat.empty()) < std::pair(b.kind, !b.caveat.empty());
  });
}

uint8_t edge_type(bool held_shared, bool acquired_recursive) {
  if (held_shared) return acquired_recursive ? kEdgeSR : kEdgeSN;
  return acquired_recursive ? kEdgeER : kEdgeEN;
}

// Two edges meet at a lock: a recursive reader's way in followed by a shared way out is no
// deadlock (that reader never waits for the other reader).
bool strong_junction(uint8_t incoming, uint8_t outgoing) {
  return !((incoming & kIntoRecursive) && (outgoing & kFromShared));
}

// Whether a cycle whose edges carry these type masks can be walked with every junction strong,
// the closing one included: lockdep's "strong circle", the only kind that can deadlock.
bool is_strong_cycle(const std::vector<uint8_t>& masks) {
  for (uint8_t first : kEdgeTypes) {
    if (!(masks.front() & first)) continue;
    uint8_t reachable = first;  // types the walk can be in at the current edge
    for (size_t i = 1; i < masks.size(); ++i) {
      uint8_t next = 0;
      for (uint8_t type : kEdgeTypes) {
        if (!(masks[i] & type)) continue;
        for (uint8_t previous : kEdgeTypes) {
          if ((reachable & previous) && strong_junction(previous, type)) next |= type;
        }
      }
      reachable = next;
    }
    for (uint8_t last : kEdgeTypes) {
      if ((reachable & last) && strong_junction(last, first)) return true;
    }
  }
  return false;
}

// Spinning locks (spinlock, rwlock) held this long mean a missed release: the kernel's RCU stall
// and soft-lockup detectors fire long before. Sleeping locks may be held as long as they like.
constexpr uint64_t kStaleSpinHoldNs = 1'000'000'000;

bool spins(Access access) {
  return access == Access::spinlock || access == Access::rwlock_read || access == Access::rwlock_write;
}

bool is_read(Access access) {
  return access == Access::rwlock_read || access == Access::rwsem_read || access == Access::percpu_rwsem_read;
}

}  // namespace

std::string_view usage_name(Usage usage) { return kUsageNames[static_cast<size_t>(usage)]; }

namespace {
// lockdep's title of an inconsistency: the usage seen first, then the one that contradicted it.
std::string inconsistent_usage_title(Usage first, Usage second) {
  return "inconsistent {" + std::string(usage_name(first)) + "} -> {" + std::string(usage_name(second)) + "} usage";
}
}  // namespace

std::string_view kind_name(FindingKind kind) {
  for (const auto& entry : kKindNames) {
    if (entry.kind == kind) return entry.name;
  }
  return "unknown";
}

struct LockdepReplay::State {
  State(const Options& options, Stats& stats, std::vector<Finding>& findings)
      : options_(options), stats_(stats), findings_(findings) {}
  struct LockState {
    uint64_t address = 0;
    uint32_t access_mask = 0;
    uint8_t usage_mask = 0;
    uint32_t held_entries = 0;  // held stack entries of this lock over all contexts
    std::array<uint32_t, kUsageCount> usage_count{};
    std::array<uint32_t, kUsageCount> first_usage{};  // index into usages, valid with the bit
  };
  struct UsageRecord {
    uint32_t stack = 0;
    uint64_t time = 0;
    std::string holder;
  };
  struct Edge {
    uint32_t from = 0, to = 0;
    uint8_t types = 0;
    uint64_t count = 0;
    uint64_t time = 0;       // of the occurrence whose evidence is kept
    uint64_t last_time = 0;  // of the latest occurrence
    uint32_t held_stack = 0, stack = 0;
    std::string holder;
    // Whether the hold the edge came from was seen released. A hold whose release was missed
    // (taken again while "held", a spinlock "held" for a second, lost events) may have ended long
    // before the acquisition that made the edge: perf enables the probes one by one, so its own
    // ioctls at the start of a recording show mutex_lock without mutex_unlock. Only confirmed
    // edges enter the order graph.
    bool confirmed = false;
  };
  // An edge waiting for the release of the hold it came from, with that hold's evidence.
  struct PendingEdge {
    uint32_t hold = 0;  // HeldLock::serial
    uint32_t edge = 0;
    uint32_t held_stack = 0, stack = 0;
    uint64_t time = 0;
    std::string holder;
  };
  struct HeldLock {
    uint32_t serial = 0;  // tells this hold from the context's others, for pending edges
    uint32_t lock = 0;
    uint64_t time = 0;
    bool spins = false;  // a spinlock or rwlock: never held across sleeping
    bool shared = false;
    bool recursive = false;
    bool trylock = false;
    uint32_t frames_start = 0, frames_count = 0;  // in ContextState::frames
  };
  struct ContextState {
    std::vector<HeldLock> held;
    std::vector<uint64_t> frames;  // stacks of the held locks' acquisitions, in order
    std::vector<PendingEdge> pending_edges;
    uint32_t next_serial = 0;
  };
  // One acquisition as the replay needs it.
  struct Acquisition {
    const perf::Sample* sample = nullptr;
    ExecContext context = ExecContext::task;
    uint8_t flags = 0;
    uint64_t lock = 0;
    Access access = Access::unknown;
    probes::Flavour flavour = probes::Flavour::plain;
    bool trylock = false;
    std::span<const uint64_t> frames;
    // Set when `frames` is still to be read from the callchain: a recording without releases
    // needs a stack only for a lock's first use of a kind, so most are never read.
    const perf::Callchain* unread_callchain = nullptr;
  };

  bool has_release_events = false;
  ThreadNames names;
  std::vector<LockState> locks;
  std::unordered_map<uint64_t, uint32_t> lock_ids;
  std::vector<UsageRecord> usages;
  std::vector<Edge> edges;
  std::unordered_map<uint64_t, uint32_t> edge_ids;  // from << 32 | to
  std::unordered_map<uint64_t, ContextState> contexts;
  model::StackTable stacks;
  std::vector<uint64_t> frame_buffer;

  const Options& options_;
  Stats& stats_;
  std::vector<Finding>& findings_;

  void mark_usage(uint32_t lock, const Acquisition& taken);
  void replay_acquire(ContextState& context, uint32_t lock, const Acquisition& taken);
  void push_held(ContextState& context, uint32_t lock, bool shared, bool recursive, const Acquisition& taken);
  void add_edge(ContextState& context, const HeldLock& held, uint32_t to, bool recursive, const Acquisition& taken);
  void end_hold(ContextState& context, size_t index, bool released);
  void end_holds_elsewhere(const ContextState& taker, uint32_t lock);
  void replay_release(ContextState& context, uint64_t address);
  Evidence usage_evidence(uint32_t lock, Usage usage) const;
  Evidence edge_evidence(uint32_t edge_index) const;
  FindingLock finding_lock(uint32_t lock) const;
  bool room_for(FindingKind kind);
  void find_inconsistencies(const model::HolderModel* holders);
  void find_cycles();
  std::span<const uint64_t> call_site(uint32_t stack) const;
  bool looks_like_reused_addresses(std::span<const uint32_t> cycle_edges) const;
  void find_safe_to_unsafe();

  // The kernel frames of the sample, innermost first, in a buffer reused by the next sample.
  std::span<const uint64_t> read_frames(const perf::Callchain& callchain) {
    frame_buffer.clear();
    perf::for_each_frame(callchain, [&](uint64_t address, perf::FrameContext frame_context) {
      if (frame_context != perf::FrameContext::user && frame_context != perf::FrameContext::guest_user) {
        frame_buffer.push_back(address);
      }
    });
    return frame_buffer;
  }
  std::span<const uint64_t> frames_of(const Acquisition& taken) {
    return taken.unread_callchain ? read_frames(*taken.unread_callchain) : taken.frames;
  }

  // The acquisition this sample made, of `address`. With releases every held lock keeps its
  // stack, so it is read now; without, only when needed.
  Acquisition acquisition_of(const perf::Sample& sample, const LockEvent& event, uint64_t address) {
    Acquisition taken;
    taken.sample = &sample;
    taken.context = event.context;
    taken.flags = event.common_flags;
    taken.lock = address;
    if (has_release_events) {
      taken.frames = read_frames(sample.callchain);
    } else {
      taken.unread_callchain = &sample.callchain;
    }
    return taken;
  }

  void acquire(const Acquisition& taken) {
    ++stats_.acquisitions;
    uint32_t lock = lock_for(taken.lock);
    locks[lock].access_mask |= 1u << static_cast<unsigned>(taken.access);
    mark_usage(lock, taken);
    if (has_release_events) replay_acquire(contexts[execution_context_key(*taken.sample, taken.context)], lock, taken);
  }

  uint32_t lock_for(uint64_t address) {
    auto [it, inserted] = lock_ids.try_emplace(address, static_cast<uint32_t>(locks.size()));
    if (inserted) locks.push_back(LockState{.address = address});
    return it->second;
  }

  std::string holder_label(const perf::Sample& sample, ExecContext context) {
    std::string task = std::string(names.get(sample.tid)) + "[" + std::to_string(sample.tid) + "]";
    if (context == ExecContext::task) return task;
    return "[" + std::string(context_name(context)) + "] cpu " + std::to_string(sample.cpu) + " over " + task;
  }
};

LockdepReplay::LockdepReplay(Options options)
    : options_(options), state_(std::make_unique<State>(options_, stats_, findings_)) {}
LockdepReplay::~LockdepReplay() = default;

void LockdepReplay::on_lock_events_known(const LockEventDecoder&, std::span<const EventRole> roles) {
  state_->has_release_events = std::any_of(roles.begin(), roles.end(),
                                           [](const EventRole& role) { return role.type == EventRole::Type::release; });
}

void LockdepReplay::on_comm(const perf::CommRecord& comm) { state_->names.set(comm.tid, comm.comm); }

void LockdepReplay::on_fork(const perf::TaskRecord& task) { state_->names.fork(task.tid, task.ptid); }

namespace {

// Removes one held lock from a context, keeping the frames of the others in place.
template <typename ContextState, typename Locks>
void remove_held(ContextState& context, size_t index, Locks& locks) {
  auto& held = context.held;
  uint32_t start = held[index].frames_start, count = held[index].frames_count;
  context.frames.erase(context.frames.begin() + start, context.frames.begin() + start + count);
  for (size_t i = index + 1; i < held.size(); ++i) held[i].frames_start -= count;
  --locks[held[index].lock].held_entries;
  held.erase(held.begin() + static_cast<std::ptrdiff_t>(index));
}

}  // namespace

// A hold ends: seen released (its pending edges are confirmed, with its evidence), or found stale
// (they are dropped; an edge made again by a hold that is released is confirmed then).
void LockdepReplay::State::end_hold(ContextState& context, size_t index, bool released) {
  const uint32_t serial = context.held[index].serial;
  auto& pending = context.pending_edges;
  for (size_t i = 0; i < pending.size();) {
    if (pending[i].hold != serial) {
      ++i;
      continue;
    }
    Edge& edge = edges[pending[i].edge];
    if (released && !edge.confirmed) {
      edge.confirmed = true;
      edge.held_stack = pending[i].held_stack;
      edge.stack = pending[i].stack;
      edge.time = pending[i].time;
      edge.holder = std::move(pending[i].holder);
    }
    pending[i] = std::move(pending.back());
    pending.pop_back();
  }
  remove_held(context, index, locks);
}

void LockdepReplay::on_lost(const perf::LostRecord&) { on_lost_samples(1, {}); }

void LockdepReplay::on_lost_samples(uint64_t, const perf::SampleId&) {
  // Some acquisition or release is missing: what any context holds is no longer known.
  State& s = *state_;
  for (auto& [key, context] : s.contexts) {
    while (!context.held.empty()) s.end_hold(context, context.held.size() - 1, false);
  }
  ++stats_.replay_resets;
}

void LockdepReplay::on_lock_event(const perf::Sample& sample, const LockEvent& event, const EventRole& role) {
  State& s = *state_;
  using Type = EventRole::Type;
  switch (role.type) {
    case Type::acquire: {
      if (!event.lock) return;
      State::Acquisition taken = s.acquisition_of(sample, event, *event.lock);
      taken.access = model::access_from_kind(role.row->kind);
      taken.flavour = role.row->flavour;
      s.acquire(taken);
      return;
    }
    case Type::contention_begin: {
      if (!event.lock) return;
      State::Acquisition taken = s.acquisition_of(sample, event, *event.lock);
      // Inside the slow path the flags are the lock's own: whatever the entry point disabled is
      // disabled by now.
      taken.access = model::access_from_contention_flags(event.contention_flags.value_or(0));
      s.acquire(taken);
      return;
    }
    case Type::release:
      if (event.lock) s.replay_release(s.contexts[execution_context_key(sample, event.context)], *event.lock);
      return;
    case Type::trylock_entry:  // replayed once paired with its result: on_trylock
    case Type::trylock_return:
    case Type::contention_end:
    case Type::ignored: return;
  }
}

void LockdepReplay::on_trylock(const TrylockOutcome& trylock) {
  if (!trylock.taken) {
    ++stats_.trylocks_without_result;
    return;
  }
  if (!*trylock.taken) return;  // not taken: no hold, no usage
  const probes::ProbeRow& row = *trylock.entry_role.row;
  State::Acquisition taken = state_->acquisition_of(trylock.entry, trylock.entry_event, *trylock.entry_event.lock);
  taken.access = model::access_from_kind(row.kind);
  taken.flavour = row.flavour;
  taken.trylock = true;
  state_->acquire(taken);
}

void LockdepReplay::State::mark_usage(uint32_t lock, const Acquisition& taken) {
  State& s = *this;
  // lockdep is off in NMIs; their locks are raw and NMI-safe by construction.
  if (taken.context == ExecContext::nmi) return;
  bool read = is_read(taken.access);
  FlavourMasking masking = masking_of(taken.flavour);
  // Hardirqs are enabled at the acquisition when the probe saw them on and the entry point does
  // not turn them off; softirqs are enabled when, as well, no softirq runs and bottom halves are
  // not disabled (by the caller, or by a _bh entry point).
  bool hardirqs_on =
      taken.context != ExecContext::hardirq && !(taken.flags & trace_flags::kIrqsOff) && !masking.disables_irqs;
  bool softirqs_on =
      hardirqs_on && taken.context == ExecContext::task && !(taken.flags & trace_flags::kBhOff) && !masking.disables_bh;
  uint8_t marks = 0;
  for (const IrqClass& irq : kIrqClasses) {
    // A trylock in an interrupt never waits, so it makes no lock "used in" it (lockdep's rule).
    if (!taken.trylock && taken.context == irq.context) marks |= usage_bit(read ? irq.in_r : irq.in_w);
  }
  if (hardirqs_on) marks |= usage_bit(read ? Usage::hardirq_on_r : Usage::hardirq_on_w);
  if (softirqs_on) marks |= usage_bit(read ? Usage::softirq_on_r : Usage::softirq_on_w);

  LockState& state = s.locks[lock];
  for (size_t bit = 0; bit < kUsageCount; ++bit) {
    if (!(marks & (1u << bit))) continue;
    ++state.usage_count[bit];
    if (state.usage_mask & (1u << bit)) continue;
    state.usage_mask |= static_cast<uint8_t>(1u << bit);
    state.first_usage[bit] = static_cast<uint32_t>(s.usages.size());
    s.usages.push_back(
        {s.stacks.intern(s.frames_of(taken)), taken.sample->time, s.holder_label(*taken.sample, taken.context)});
  }
}

void LockdepReplay::State::replay_acquire(ContextState& context, uint32_t lock, const Acquisition& taken) {
  State& s = *this;
  bool shared = is_read(taken.access);
  if (!shared) s.end_holds_elsewhere(context, lock);
  // read_lock() is a recursive reader in interrupt context (in_interrupt(): an interrupt, or
  // bottom halves off); elsewhere queued rwlocks make readers wait for a waiting writer.
  bool recursive = taken.access == Access::rwlock_read &&
                   (taken.context != ExecContext::task || (taken.flags & trace_flags::kBhOff));
  auto& held = context.held;
  for (size_t i = held.size(); i-- > 0;) {
    if (held[i].spins && taken.sample->time > held[i].time + kStaleSpinHoldNs) {
      ++stats_.stale_spin_holds;
      s.end_hold(context, i, false);
    }
  }
  for (size_t i = held.size(); i-- > 0;) {
    if (held[i].lock != lock) continue;
    if (recursive && held[i].shared) {
      ++stats_.recursive_reads;  // allowed, and adds no dependency
      push_held(context, lock, shared, recursive, taken);
      return;
    }
    // Taken again while held: a real self-deadlock would have hung the machine before the
    // recording ended, so the release was missed. Forget the old hold.
    ++stats_.reacquired_while_held;
    s.end_hold(context, i, false);
    break;
  }
  if (!taken.trylock) {
    // lockdep's check_prevs_add(): an edge from each held lock down to the first one that is not
    // a trylock; the locks below are reached through that one's own edges.
    for (size_t i = held.size(); i-- > 0;) {
      add_edge(context, held[i], lock, recursive, taken);
      if (!held[i].trylock) break;
    }
  }
  push_held(context, lock, shared, recursive, taken);
}

void LockdepReplay::State::push_held(ContextState& context, uint32_t lock, bool shared, bool recursive,
                                     const Acquisition& taken) {
  State& s = *this;
  if (context.held.size() >= options_.max_depth) {
    ++stats_.depth_overflows;
    s.end_hold(context, 0, false);
  }
  HeldLock entry;
  entry.serial = context.next_serial++;
  entry.lock = lock;
  entry.time = taken.sample->time;
  entry.spins = spins(taken.access);
  entry.shared = shared;
  entry.recursive = recursive;
  entry.trylock = taken.trylock;
  entry.frames_start = static_cast<uint32_t>(context.frames.size());
  entry.frames_count = static_cast<uint32_t>(taken.frames.size());
  context.frames.insert(context.frames.end(), taken.frames.begin(), taken.frames.end());
  context.held.push_back(entry);
  ++s.locks[lock].held_entries;
}

void LockdepReplay::State::add_edge(ContextState& context, const HeldLock& held, uint32_t to, bool recursive,
                                    const Acquisition& taken) {
  State& s = *this;
  uint8_t type = edge_type(held.shared, recursive);
  uint64_t key = uint64_t{held.lock} << 32 | to;
  auto found = s.edge_ids.find(key);
  uint32_t index = 0;
  if (found != s.edge_ids.end()) {
    index = found->second;
    Edge& edge = s.edges[index];
    edge.types |= type;
    ++edge.count;
    edge.last_time = taken.sample->time;
    if (edge.confirmed) return;
  } else {
    if (s.edges.size() >= options_.max_edges) {
      ++stats_.edges_dropped;
      return;
    }
    index = static_cast<uint32_t>(s.edges.size());
    Edge edge;
    edge.from = held.lock;
    edge.to = to;
    edge.types = type;
    edge.count = 1;
    edge.last_time = taken.sample->time;
    s.edge_ids.emplace(key, index);
    s.edges.push_back(std::move(edge));
    ++stats_.edges;
  }
  std::span<const uint64_t> held_frames(context.frames);
  context.pending_edges.push_back(
      {held.serial, index, s.stacks.intern(held_frames.subspan(held.frames_start, held.frames_count)),
       s.stacks.intern(taken.frames), taken.sample->time, s.holder_label(*taken.sample, taken.context)});
}

void LockdepReplay::State::replay_release(ContextState& context, uint64_t address) {
  State& s = *this;
  ++stats_.releases;
  auto id = s.lock_ids.find(address);
  if (id == s.lock_ids.end() || s.locks[id->second].held_entries == 0) {
    ++stats_.unmatched_releases;  // taken before the recording began
    return;
  }
  uint32_t lock = id->second;
  for (size_t i = context.held.size(); i-- > 0;) {
    if (context.held[i].lock == lock) {
      s.end_hold(context, i, true);
      return;
    }
  }
  // Held elsewhere: another task releases it (mutex hand-off, up_read() by another task, the
  // scheduler's runqueue lock taken in __schedule() by the task switched out and released by the
  // one switched in) or an interrupt context releases what its task took. The hold released is
  // the latest one: a lock cannot be taken again while held, and older holds are stale.
  ContextState* latest_context = nullptr;
  size_t latest_index = 0;
  for (auto& [key, other] : s.contexts) {
    for (size_t i = 0; i < other.held.size(); ++i) {
      if (other.held[i].lock == lock &&
          (latest_context == nullptr || other.held[i].time > latest_context->held[latest_index].time)) {
        latest_context = &other;
        latest_index = i;
      }
    }
  }
  if (latest_context != nullptr) {
    s.end_hold(*latest_context, latest_index, true);
    ++stats_.released_by_other_context;
  }
}

// An exclusive acquisition means nobody else holds the lock: another context's hold of it was
// released unseen (or handed over, as the runqueue lock is across a context switch), so it is
// stale. Without this, a task that took its runqueue's lock in __schedule() and resumed on
// another CPU kept "holding" it, and its next locks made false orders after the runqueue lock.
void LockdepReplay::State::end_holds_elsewhere(const ContextState& taker, uint32_t lock) {
  size_t held_by_taker = 0;
  for (const auto& held : taker.held) held_by_taker += held.lock == lock;
  if (locks[lock].held_entries == held_by_taker) return;
  for (auto& [key, other] : contexts) {
    if (&other == &taker) continue;
    for (size_t i = other.held.size(); i-- > 0;) {
      if (other.held[i].lock == lock) {
        end_hold(other, i, false);
        ++stats_.held_elsewhere_when_taken;
      }
    }
  }
}

// ---- findings ----

Evidence LockdepReplay::State::usage_evidence(uint32_t lock, Usage usage) const {
  const State& s = *this;
  const LockState& state = s.locks[lock];
  const UsageRecord& record = s.usages[state.first_usage[static_cast<size_t>(usage)]];
  Evidence evidence;
  evidence.type = Evidence::Type::usage;
  evidence.usage = usage_name(usage);
  evidence.lock = state.address;
  evidence.holder = record.holder;
  evidence.time_ns = record.time;
  evidence.count = state.usage_count[static_cast<size_t>(usage)];
  auto frames = s.stacks.frames(record.stack);
  evidence.stack.assign(frames.begin(), frames.end());
  return evidence;
}

Evidence LockdepReplay::State::edge_evidence(uint32_t edge_index) const {
  const State& s = *this;
  const Edge& edge = s.edges[edge_index];
  Evidence evidence;
  evidence.type = Evidence::Type::edge;
  evidence.lock = s.locks[edge.to].address;
  evidence.held_lock = s.locks[edge.from].address;
  evidence.holder = edge.holder;
  evidence.time_ns = edge.time;
  evidence.last_time_ns = edge.last_time;
  evidence.count = edge.count;
  auto frames = s.stacks.frames(edge.stack);
  evidence.stack.assign(frames.begin(), frames.end());
  auto held_frames = s.stacks.frames(edge.held_stack);
  evidence.held_stack.assign(held_frames.begin(), held_frames.end());
  return evidence;
}

FindingLock LockdepReplay::State::finding_lock(uint32_t lock) const {
  const LockState& state = locks[lock];
  return {state.address, model::access_names(state.access_mask), ""};
}

bool LockdepReplay::State::room_for(FindingKind kind) {
  size_t count = std::count_if(findings_.begin(), findings_.end(),
                               [kind](const Finding& finding) { return finding.kind == kind; });
  if (count < options_.max_findings_per_kind) return true;
  ++stats_.findings_dropped;
  return false;
}

void LockdepReplay::State::find_inconsistencies(const model::HolderModel* holders) {
  const State& s = *this;
  std::map<uint64_t, std::vector<std::string>> holders_by_lock;
  for (uint32_t lock = 0; lock < s.locks.size(); ++lock) {
    const LockState& state = s.locks[lock];
    for (const IrqClass& irq : kIrqClasses) {
      for (const UsageConflict& conflict : kUsageConflicts) {
        Usage in = irq.*conflict.in, on = irq.*conflict.on;
        if (!(state.usage_mask & usage_bit(in)) || !(state.usage_mask & usage_bit(on))) continue;
        if (!room_for(irq.inconsistent)) break;
        // lockdep names the usage it saw first, then the one that contradicted it.
        Usage first = in, second = on;
        if (s.usages[state.first_usage[static_cast<size_t>(on)]].time <
            s.usages[state.first_usage[static_cast<size_t>(in)]].time) {
          std::swap(first, second);
        }
        Finding finding;
        finding.kind = irq.inconsistent;
        finding.title = inconsistent_usage_title(first, second);
        finding.locks.push_back(finding_lock(lock));
        finding.evidence.push_back(usage_evidence(lock, first));
        finding.evidence.push_back(usage_evidence(lock, second));
        holders_by_lock[state.address];  // filled below, in one pass over the model
        findings_.push_back(std::move(finding));
        break;  // one finding per lock and interrupt class
      }
    }
  }
  if (holders == nullptr || holders_by_lock.empty()) return;
  for (const auto& pair : holders->pairs()) {
    if (pair.acquisitions == 0) continue;
    auto found = holders_by_lock.find(holders->locks()[pair.lock].address);
    if (found != holders_by_lock.end()) found->second.push_back(holders->holders()[pair.holder].label());
  }
  for (Finding& finding : findings_) {
    auto found = holders_by_lock.find(finding.locks.front().address);
    if (found != holders_by_lock.end()) finding.holders = found->second;
  }
}

// The call site of an acquisition: the lock function and its caller, the first two frames.
std::span<const uint64_t> LockdepReplay::State::call_site(uint32_t stack) const {
  auto frames = stacks.frames(stack);
  return frames.size() < 2 ? std::span<const uint64_t>{} : frames.first(2);
}

// A cycle that one nesting walk over reused addresses would make (see Finding::caveat): every
// edge first made with the held lock taken at one site and the next lock at another, the same for
// all edges, and no moment at which every edge had been seen and was still to be seen again. A
// deadlock needs the orders at the same time; two walks that really take one pair of objects in
// opposite orders would be seen interleaved.
bool LockdepReplay::State::looks_like_reused_addresses(std::span<const uint32_t> cycle_edges) const {
  const Edge& first = edges[cycle_edges.front()];
  auto held_site = call_site(first.held_stack), taken_site = call_site(first.stack);
  if (held_site.empty() || taken_site.empty()) return false;  // no call stacks: nothing to tell by
  uint64_t latest_first = 0, earliest_last = UINT64_MAX;
  for (uint32_t index : cycle_edges) {
    const Edge& edge = edges[index];
    if (!std::ranges::equal(call_site(edge.held_stack), held_site) ||
        !std::ranges::equal(call_site(edge.stack), taken_site)) {
      return false;
    }
    latest_first = std::max(latest_first, edge.time);
    earliest_last = std::min(earliest_last, edge.last_time);
  }
  return latest_first > earliest_last;
}

void LockdepReplay::State::find_cycles() {
  const State& s = *this;
  if (s.edges.empty()) return;
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;
  Graph graph(s.locks.size());
  for (const auto& edge : s.edges) boost::add_edge(edge.from, edge.to, graph);
  std::vector<size_t> component(s.locks.size());
  boost::strong_components(graph, component.data());

  // Elementary cycles inside each strong component, each found once from its lowest lock: a
  // depth-first walk through higher locks of the same component, bounded in length and steps.
  std::vector<std::vector<uint32_t>> successors(s.locks.size());
  for (uint32_t i = 0; i < s.edges.size(); ++i) {
    const Edge& edge = s.edges[i];
    if (component[edge.from] == component[edge.to]) successors[edge.from].push_back(i);
  }
  size_t steps = 0;
  std::vector<uint32_t> path_edges;
  std::vector<bool> on_path(s.locks.size(), false);
  bool full = false;
  auto report_cycle = [&] {
    std::vector<uint8_t> masks;
    masks.reserve(path_edges.size());
    for (uint32_t edge : path_edges) masks.push_back(s.edges[edge].types);
    if (!is_strong_cycle(masks)) return;  // only recursive readers meet: no deadlock
    if (!room_for(FindingKind::lock_order_cycle)) {
      full = true;
      return;
    }
    Finding finding;
    finding.kind = FindingKind::lock_order_cycle;
    finding.title = "possible circular locking dependency detected";
    for (uint32_t edge : path_edges) {
      finding.locks.push_back(finding_lock(s.edges[edge].from));
      finding.evidence.push_back(edge_evidence(edge));
    }
    if (looks_like_reused_addresses(path_edges)) finding.caveat = kReusedAddressesCaveat;
    findings_.push_back(std::move(finding));
  };
  auto walk = [&](auto& self, uint32_t start, uint32_t at) -> void {
    for (uint32_t edge : successors[at]) {
      if (full) return;
      if (++steps > options_.cycle_search_steps) {
        stats_.cycle_search_truncated = true;
        full = true;
        return;
      }
      uint32_t next = s.edges[edge].to;
      if (next < start) continue;
      path_edges.push_back(edge);
      if (next == start) {
        report_cycle();
      } else if (!on_path[next] && path_edges.size() < options_.max_cycle_length) {
        on_path[next] = true;
        self(self, start, next);
        on_path[next] = false;
      }
      path_edges.pop_back();
    }
  };
  for (uint32_t start = 0; start < s.locks.size() && !full; ++start) {
    if (successors[start].empty()) continue;
    on_path[start] = true;
    walk(walk, start, start);
    on_path[start] = false;
  }
}

void LockdepReplay::State::find_safe_to_unsafe() {
  const State& s = *this;
  if (s.edges.empty()) return;
  std::vector<std::vector<uint32_t>> successors(s.locks.size());
  for (uint32_t i = 0; i < s.edges.size(); ++i) successors[s.edges[i].from].push_back(i);
  constexpr uint32_t kNone = UINT32_MAX;
  std::vector<uint32_t> reached_by(s.locks.size(), kNone);  // the edge a breadth-first walk came by
  std::vector<uint32_t> visited;
  for (const IrqClass& irq : kIrqClasses) {
    for (uint32_t safe = 0; safe < s.locks.size(); ++safe) {
      const LockState& safe_state = s.locks[safe];
      bool safe_writer = safe_state.usage_mask & usage_bit(irq.in_w);
      bool safe_reader = safe_state.usage_mask & usage_bit(irq.in_r);
      if ((!safe_writer && !safe_reader) || successors[safe].empty()) continue;
      // Every lock taken while `safe` is held, directly or through others, nearest first.
      for (uint32_t lock : visited) reached_by[lock] = kNone;
      visited.clear();
      std::deque<uint32_t> queue{safe};
      while (!queue.empty()) {
        uint32_t at = queue.front();
        queue.pop_front();
        for (uint32_t edge : successors[at]) {
          uint32_t next = s.edges[edge].to;
          if (next == safe || reached_by[next] != kNone) continue;
          reached_by[next] = edge;
          visited.push_back(next);
          queue.push_back(next);
        }
      }
      for (uint32_t unsafe : visited) {
        // The same pairs as an inconsistency, the safe lock's interrupt use against the unsafe
        // one's enabled use; the most telling pair found.
        const uint8_t unsafe_usage = s.locks[unsafe].usage_mask;
        const UsageConflict* conflict = nullptr;
        for (const UsageConflict& candidate : kUsageConflicts) {
          if ((safe_state.usage_mask & usage_bit(irq.*candidate.in)) && (unsafe_usage & usage_bit(irq.*candidate.on))) {
            conflict = &candidate;
            break;
          }
        }
        if (conflict == nullptr) continue;
        const Usage in = irq.*conflict->in, on = irq.*conflict->on;
        if (!room_for(irq.safe_to_unsafe)) return;
        Finding finding;
        finding.kind = irq.safe_to_unsafe;
        finding.title = std::string(irq.name) + "-safe -> " + std::string(irq.name) + "-unsafe lock order detected";
        finding.locks = {finding_lock(safe), finding_lock(unsafe)};
        finding.evidence.push_back(usage_evidence(safe, in));
        finding.evidence.push_back(usage_evidence(unsafe, on));
        std::vector<uint32_t> path;
        for (uint32_t at = unsafe; at != safe; at = s.edges[reached_by[at]].from) path.push_back(reached_by[at]);
        for (auto edge = path.rbegin(); edge != path.rend(); ++edge) finding.evidence.push_back(edge_evidence(*edge));
        findings_.push_back(std::move(finding));
      }
    }
  }
}

void LockdepReplay::finish(const model::HolderModel* holders) {
  State& s = *state_;
  findings_.clear();
  s.find_inconsistencies(holders);
  // A hold still open when the recording ended may well be held still: its edges count. Those
  // whose hold was found stale before do not (see Edge::confirmed).
  for (auto& [key, context] : s.contexts) {
    while (!context.held.empty()) s.end_hold(context, context.held.size() - 1, true);
  }
  std::erase_if(s.edges, [&](const State::Edge& edge) {
    if (!edge.confirmed) ++stats_.unconfirmed_edges;
    return !edge.confirmed;
  });
  s.edge_ids.clear();
  if (s.has_release_events) {
    s.find_cycles();
    s.find_safe_to_unsafe();
  }
  sort_findings(findings_);
}

void LockdepReplay::add_class_findings(const ClassOf& class_of) {
  State& s = *state_;
  auto usage_time = [&](uint32_t lock, size_t bit) { return s.usages[s.locks[lock].first_usage[bit]].time; };
  // Per class, for each usage bit, the lock that showed it first.
  struct ClassUsage {
    uint8_t mask = 0;
    std::array<uint32_t, kUsageCount> first_lock{};
  };
  std::map<std::string, ClassUsage> classes;
  for (uint32_t lock = 0; lock < s.locks.size(); ++lock) {
    const State::LockState& state = s.locks[lock];
    if (state.usage_mask == 0) continue;
    size_t earliest = kUsageCount;
    for (size_t bit = 0; bit < kUsageCount; ++bit) {
      if ((state.usage_mask & (1u << bit)) &&
          (earliest == kUsageCount || usage_time(lock, bit) < usage_time(lock, earliest))) {
        earliest = bit;
      }
    }
    std::string name = class_of(state.address, s.stacks.frames(s.usages[state.first_usage[earliest]].stack));
    if (name.empty()) continue;
    ClassUsage& usage = classes[name];
    for (size_t bit = 0; bit < kUsageCount; ++bit) {
      if (!(state.usage_mask & (1u << bit))) continue;
      if (!(usage.mask & (1u << bit)) || usage_time(lock, bit) < usage_time(usage.first_lock[bit], bit)) {
        usage.first_lock[bit] = lock;
      }
      usage.mask |= static_cast<uint8_t>(1u << bit);
    }
  }
  for (const auto& [name, usage] : classes) {
    for (const IrqClass& irq : kIrqClasses) {
      for (const UsageConflict& conflict : kUsageConflicts) {
        Usage in = irq.*conflict.in, on = irq.*conflict.on;
        if (!(usage.mask & usage_bit(in)) || !(usage.mask & usage_bit(on))) continue;
        uint32_t in_lock = usage.first_lock[static_cast<size_t>(in)];
        uint32_t on_lock = usage.first_lock[static_cast<size_t>(on)];
        if (in_lock == on_lock) break;  // one lock: found by address already
        if (!s.room_for(irq.inconsistent)) break;
        std::array<std::pair<Usage, uint32_t>, 2> seen = {{{in, in_lock}, {on, on_lock}}};
        if (usage_time(on_lock, static_cast<size_t>(on)) < usage_time(in_lock, static_cast<size_t>(in))) {
          std::swap(seen[0], seen[1]);
        }
        Finding finding;
        finding.kind = irq.inconsistent;
        finding.title = inconsistent_usage_title(seen[0].first, seen[1].first);
        for (const auto& [bit, lock] : seen) {
          finding.locks.push_back(s.finding_lock(lock));
          finding.locks.back().lock_class = name;
          finding.evidence.push_back(s.usage_evidence(lock, bit));
        }
        findings_.push_back(std::move(finding));
        break;
      }
    }
  }
  sort_findings(findings_);
}

std::vector<std::string> LockdepReplay::notes() const {
  const State& s = *state_;
  std::vector<std::string> notes;
  if (!s.has_release_events) {
    notes.push_back(
        "no release probes in the recording: lock order was not checked (record with "
        "lockrec --release)");
    return notes;
  }
  auto note = [&](uint64_t count, const std::string& what) {
    if (count > 0) notes.push_back(std::to_string(count) + " " + what);
  };
  note(stats_.unmatched_releases, "releases matched no acquisition (taken before the recording began)");
  note(stats_.released_by_other_context,
       "locks were released by another thread or context than the one that took them");
  note(stats_.trylocks_without_result,
       "trylocks had no result probe, so whether they took the lock is unknown: not replayed "
       "(record with lockrec --trylock-result)");
  note(stats_.reacquired_while_held, "acquisitions of a lock its context already held: a release was missed");
  note(stats_.stale_spin_holds,
       "spinlocks seemed held for over a second: their release was missed, they were forgotten");
  note(stats_.depth_overflows,
       "times a context held more than " + std::to_string(options_.max_depth) + " locks: the oldest were forgotten");
  note(stats_.replay_resets, "times events were lost: the replay forgot what was held");
  note(stats_.held_elsewhere_when_taken,
       "exclusive locks were taken while another context seemed to hold them: "
       "those holds were stale and forgotten");
  note(stats_.unconfirmed_edges,
       "lock orders were seen only from holds whose release was missed: left out of "
       "the order checks");
  note(stats_.edges_dropped,
       "lock-order edges beyond the first " + std::to_string(options_.max_edges) + " were not kept");
  note(stats_.findings_dropped,
       "findings beyond " + std::to_string(options_.max_findings_per_kind) + " of a kind were left out");
  if (stats_.cycle_search_truncated) notes.push_back("the search for lock-order cycles was cut short");
  return notes;
}

}  // namespace lockscope::lockdep
