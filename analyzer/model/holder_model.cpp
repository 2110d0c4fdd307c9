#include "holder_model.hpp"

#include <algorithm>
#include <array>

namespace lockscope::model {
namespace {

struct AccessName {
  Access access;
  std::string_view name;
};
constexpr std::array kAccessNames = {
    AccessName{Access::spinlock, "spinlock"},
    AccessName{Access::rwlock_read, "rwlock-read"},
    AccessName{Access::rwlock_write, "rwlock-write"},
    AccessName{Access::mutex, "mutex"},
    AccessName{Access::rwsem_read, "rwsem-read"},
    AccessName{Access::rwsem_write, "rwsem-write"},
    AccessName{Access::percpu_rwsem_read, "percpu-rwsem-read"},
    AccessName{Access::percpu_rwsem_write, "percpu-rwsem-write"},
    AccessName{Access::rt_mutex, "rt-mutex"},
    AccessName{Access::unknown, "unknown"},
};
static_assert(kAccessNames.size() == kAccessCount);

// lock:contention_begin flags to the access they mean, most specific combination first.
using namespace contention_flags;
struct ContentionAccess {
  uint32_t flags;
  Access access;
};
constexpr std::array kContentionAccess = {
    ContentionAccess{kPercpu | kRead, Access::percpu_rwsem_read},
    ContentionAccess{kPercpu | kWrite, Access::percpu_rwsem_write},
    ContentionAccess{kSpin | kRead, Access::rwlock_read},
    ContentionAccess{kSpin | kWrite, Access::rwlock_write},
    ContentionAccess{kSpin, Access::spinlock},
    ContentionAccess{kRead, Access::rwsem_read},
    ContentionAccess{kWrite, Access::rwsem_write},
    ContentionAccess{kRt, Access::rt_mutex},
    ContentionAccess{kMutex, Access::mutex},
};

struct ExtraFlavour {
  FlavourBit bit;
  std::string_view name;
};
constexpr std::array kExtraFlavours = {
    ExtraFlavour{FlavourBit::trylock_taken, "trylock-taken"},
    ExtraFlavour{FlavourBit::trylock_failed, "trylock-failed"},
    ExtraFlavour{FlavourBit::contended, "contended"},
};
constexpr size_t kProbeFlavours = 15;  // probes::Flavour values

constexpr uint8_t context_bit(ExecContext context) {
  return static_cast<uint8_t>(1u << static_cast<unsigned>(context));
}
constexpr uint32_t access_bit(Access access) { return 1u << static_cast<unsigned>(access); }

uint64_t hash_frames(std::span<const uint64_t> frames) {
  uint64_t hash = 1469598103934665603ull;
  for (uint64_t frame : frames) {
    hash ^= frame;
    hash *= 1099511628211ull;
  }
  return hash;
}

struct PseudoHolderName {
  ExecContext context;
  std::string_view label;
};
constexpr std::array kPseudoHolders = {
    PseudoHolderName{ExecContext::softirq, "[softirq]"},
    PseudoHolderName{ExecContext::hardirq, "[hardirq]"},
    PseudoHolderName{ExecContext::nmi, "[nmi]"},
};

}  // namespace

std::string_view access_name(Access access) { return kAccessNames[static_cast<size_t>(access)].name; }

std::string access_names(uint32_t mask) {
  std::string out;
  for (size_t i = 0; i < kAccessCount; ++i) {
    if (!(mask & (1u << i))) continue;
    if (!out.empty()) out += ",";
    out += access_name(static_cast<Access>(i));
  }
  return out;
}

Access access_from_kind(probes::LockKind kind) {
  switch (kind) {
    case probes::LockKind::spinlock: return Access::spinlock;
    case probes::LockKind::rwlock_read: return Access::rwlock_read;
    case probes::LockKind::rwlock_write: return Access::rwlock_write;
    case probes::LockKind::mutex: return Access::mutex;
    case probes::LockKind::rwsem_read: return Access::rwsem_read;
    case probes::LockKind::rwsem_write: return Access::rwsem_write;
  }
  return Access::unknown;
}

Access access_from_contention_flags(uint32_t flags) {
  for (const auto& entry : kContentionAccess) {
    if ((flags & entry.flags) == entry.flags) return entry.access;
  }
  return Access::unknown;
}

uint32_t flavour_bit(probes::Flavour flavour) { return 1u << static_cast<unsigned>(flavour); }

std::vector<std::string> flavour_names(uint32_t mask) {
  std::vector<std::string> names;
  for (size_t i = 0; i < kProbeFlavours; ++i) {
    if (mask & (1u << i)) {
      names.emplace_back(probes::name_of(static_cast<probes::Flavour>(i)));
    }
  }
  for (const auto& extra : kExtraFlavours) {
    if (mask & (1u << static_cast<unsigned>(extra.bit))) names.emplace_back(extra.name);
  }
  return names;
}

std::string Holder::label() const {
  for (const auto& pseudo : kPseudoHolders) {
    if (pseudo.context == pseudo_context) return std::string(pseudo.label);
  }
  return comm + "[" + std::to_string(pid) + "]";
}

uint32_t StackTable::intern(std::span<const uint64_t> frames) {
  uint64_t hash = hash_frames(frames);
  auto [begin, end] = ids_by_hash_.equal_range(hash);
  for (auto it = begin; it != end; ++it) {
    std::span<const uint64_t> stored = this->frames(it->second);
    if (std::equal(stored.begin(), stored.end(), frames.begin(), frames.end())) return it->second;
  }
  auto id = static_cast<uint32_t>(offsets_.size());
  offsets_.emplace_back(static_cast<uint32_t>(frames_.size()), static_cast<uint32_t>(frames.size()));
  frames_.insert(frames_.end(), frames.begin(), frames.end());
  ids_by_hash_.emplace(hash, id);
  return id;
}

std::span<const uint64_t> StackTable::frames(uint32_t id) const {
  auto [start, count] = offsets_.at(id);
  return std::span<const uint64_t>(frames_).subspan(start, count);
}

void HolderModel::on_lock_events_known(const LockEventDecoder& decoder, std::span<const EventRole> roles) {
  events_summary_ = decoder.events_summary();
  for (size_t i = 0; i < roles.size(); ++i) {
    const std::string& name = decoder.event_name(i);
    if (roles[i].type == EventRole::Type::ignored && !name.empty()) stats_.event_names_ignored.push_back(name);
  }
}

HolderModel::ThreadState& HolderModel::thread(uint32_t tid) { return threads_[tid]; }

void HolderModel::on_comm(const perf::CommRecord& comm) {
  ++holder_epoch_;
  names_.set(comm.tid, comm.comm);
  thread(comm.tid).pid = comm.pid;
}

void HolderModel::on_fork(const perf::TaskRecord& task) {
  ++holder_epoch_;
  bool new_process = task.pid != task.ppid;
  if (new_process) {
    auto [it, inserted] = processes_.try_emplace(task.pid);
    if (!inserted) ++it->second.generation;  // the pid was seen before: a new incarnation
    it->second.forked_by_kthreadd = task.ppid == 2;
  }
  names_.fork(task.tid, task.ptid);
  ThreadState& child = thread(task.tid);
  child.pid = task.pid;
}

void HolderModel::on_mmap(const perf::MmapRecord& map) {
  if (!kernel_text_) kernel_text_ = perf::kernel_text_of_map(map);
}

std::string_view HolderModel::comm_for_holder(uint32_t tid, int64_t pid) {
  // A process is named by its main thread, once a record has named that thread.
  if (options_.group_by == GroupBy::process && pid >= 0) {
    if (const std::string* comm = names_.find(static_cast<uint32_t>(pid))) return *comm;
  }
  return names_.get(tid);
}

uint32_t HolderModel::task_holder_for(const Acquisition& acquisition, ThreadState& state) {
  if (state.cached_epoch == holder_epoch_) {
    holders_[state.cached_holder].saw_user_frames |= acquisition.user_frames;
    return state.cached_holder;
  }
  int64_t id = options_.group_by == GroupBy::process ? acquisition.pid : static_cast<int64_t>(acquisition.tid);
  const ProcessState& process = processes_[acquisition.pid];
  std::string comm(comm_for_holder(acquisition.tid, acquisition.pid));
  std::string key = std::to_string(id) + "/" + std::to_string(process.generation) + "/" + comm;
  auto [it, inserted] = holder_ids_.try_emplace(key, static_cast<uint32_t>(holders_.size()));
  if (inserted) {
    Holder holder;
    holder.pid = id;
    holder.generation = process.generation;
    holder.comm = std::move(comm);
    holder.kernel_thread_by_fork = process.forked_by_kthreadd;
    holders_.push_back(std::move(holder));
  }
  Holder& holder = holders_[it->second];
  holder.saw_user_frames |= acquisition.user_frames;
  state.cached_holder = it->second;
  state.cached_epoch = holder_epoch_;
  return it->second;
}

uint32_t HolderModel::holder_for(const Acquisition& acquisition, ThreadState& state) {
  if (acquisition.context == ExecContext::task || options_.irq_as_task) {
    return task_holder_for(acquisition, state);
  }
  auto& pseudo = pseudo_holders_[static_cast<size_t>(acquisition.context)];
  if (!pseudo) {
    pseudo = static_cast<uint32_t>(holders_.size());
    Holder holder;
    holder.pid = -1;
    holder.pseudo_context = acquisition.context;
    holders_.push_back(std::move(holder));
  }
  return *pseudo;
}

uint32_t HolderModel::lock_for(uint64_t address) {
  auto [it, inserted] = lock_ids_.try_emplace(address, static_cast<uint32_t>(locks_.size()));
  if (inserted) locks_.push_back(Lock{address, 0});
  return it->second;
}

HolderLock& HolderModel::pair_for(uint32_t holder, uint32_t lock) {
  uint64_t key = static_cast<uint64_t>(holder) << 32 | lock;
  auto [it, inserted] = pair_ids_.try_emplace(key, static_cast<uint32_t>(pairs_.size()));
  if (inserted) {
    HolderLock pair;
    pair.holder = holder;
    pair.lock = lock;
    pairs_.push_back(std::move(pair));
  }
  return pairs_[it->second];
}

void HolderModel::record(const Acquisition& acquisition) {
  ThreadState& state = thread(acquisition.tid);
  uint32_t holder = holder_for(acquisition, state);
  uint32_t lock = lock_for(acquisition.lock);
  HolderLock& pair = pair_for(holder, lock);
  bool taken = acquisition.trylock_failed == 0;
  if (pair.acquisitions == 0 && pair.trylock_failed == 0) pair.first_time = acquisition.time;
  if (taken) {
    ++pair.acquisitions;
    ++stats_.acquisitions;
  } else {
    pair.trylock_failed += acquisition.trylock_failed;
  }
  pair.access_mask |= access_bit(acquisition.access);
  locks_[lock].access_mask |= access_bit(acquisition.access);
  pair.flavour_mask |= acquisition.flavour_mask;
  pair.context_mask |= context_bit(acquisition.context);
  if (acquisition.irqs_off) ++pair.irqs_off_at_entry;

  if (pair.stacks.size() < options_.stacks_per_pair) {
    uint32_t id = acquisition.stack_id ? *acquisition.stack_id : stacks_.intern(acquisition.kernel_frames);
    if (std::find(pair.stacks.begin(), pair.stacks.end(), id) == pair.stacks.end()) {
      pair.stacks.push_back(id);
    }
  }
  if (holders_[holder].is_pseudo()) {
    pair.add_interrupted(task_holder_for(acquisition, state));
  }
}

void HolderLock::add_interrupted(uint32_t task) {
  if (std::find(interrupted_holders.begin(), interrupted_holders.end(), task) != interrupted_holders.end()) return;
  if (interrupted_holders.size() < kMaxInterruptedTasks) {
    interrupted_holders.push_back(task);
  } else {
    ++interrupted_more;
  }
}

void HolderModel::on_sample(const perf::Sample&) { ++stats_.samples; }

void HolderModel::on_lock_event(const perf::Sample& sample, const LockEvent& event, const EventRole& role) {
  if (role.type == EventRole::Type::ignored) return;
  ++stats_.lock_events;
  const perf_event_attr& attr = sample.event->attr;
  if (attr.freq || attr.sample_period > 1) {
    ++stats_.sampled_lock_events;
    stats_.events_sampled_stand_for += (attr.sample_type & PERF_SAMPLE_PERIOD) ? sample.period : attr.sample_period;
  }
  if (stats_.first_time == 0 || sample.time < stats_.first_time) stats_.first_time = sample.time;
  stats_.last_time = std::max(stats_.last_time, sample.time);
  if (outside_window(sample.time)) {
    ++stats_.outside_window;
    return;
  }

  using Type = EventRole::Type;
  switch (role.type) {
    case Type::acquire:
    case Type::contention_begin: {
      if (!event.lock) {
        ++stats_.events_without_lock;
        return;
      }
      Acquisition acquisition = acquisition_of(sample, event);
      acquisition.lock = *event.lock;
      if (role.type == Type::acquire) {
        acquisition.access = access_from_kind(role.row->kind);
        acquisition.flavour_mask = flavour_bit(role.row->flavour);
      } else {
        ++stats_.contention_begins;
        acquisition.access = access_from_contention_flags(event.contention_flags.value_or(0));
        acquisition.flavour_mask = 1u << static_cast<unsigned>(FlavourBit::contended);
      }
      record(acquisition);
      return;
    }
    case Type::trylock_entry:
      // Recorded when the feed pairs it with its result (on_trylock).
      if (!event.lock) ++stats_.events_without_lock;
      return;
    case Type::release: ++stats_.releases; return;
    case Type::trylock_return:
    case Type::contention_end:
    case Type::ignored: return;
  }
}

HolderModel::Acquisition HolderModel::acquisition_of(const perf::Sample& sample, const LockEvent& event) {
  frame_buffer_.clear();
  bool user_frames = false;
  perf::for_each_frame(sample.callchain, [&](uint64_t address, perf::FrameContext context) {
    if (context == perf::FrameContext::user || context == perf::FrameContext::guest_user) {
      user_frames = true;
    } else {
      frame_buffer_.push_back(address);
    }
  });
  ThreadState& state = thread(sample.tid);
  if (state.pid < 0) state.pid = sample.pid;

  Acquisition acquisition{};
  acquisition.tid = sample.tid;
  acquisition.pid = static_cast<int32_t>(sample.pid);
  acquisition.time = sample.time;
  acquisition.context = event.context;
  acquisition.irqs_off = event.irqs_off;
  acquisition.user_frames = user_frames;
  acquisition.kernel_frames = frame_buffer_;
  return acquisition;
}

void HolderModel::on_trylock(const TrylockOutcome& trylock) {
  // The entry was counted (and its time checked against the window) when it came.
  if (outside_window(trylock.entry.time)) return;
  Acquisition acquisition = acquisition_of(trylock.entry, trylock.entry_event);
  acquisition.lock = *trylock.entry_event.lock;
  const probes::ProbeRow& row = *trylock.entry_role.row;
  acquisition.access = access_from_kind(row.kind);
  acquisition.flavour_mask = flavour_bit(row.flavour);
  if (trylock.taken) {
    acquisition.flavour_mask |=
        1u << static_cast<unsigned>(*trylock.taken ? FlavourBit::trylock_taken : FlavourBit::trylock_failed);
    acquisition.trylock_failed = *trylock.taken ? 0 : 1;
  } else {
    ++stats_.trylock_entries_without_result;
  }
  record(acquisition);
}

void HolderModel::on_trylock_result_without_entry(const perf::Sample& sample) {
  if (!outside_window(sample.time)) ++stats_.trylock_results_without_entry;
}

}  // namespace lockscope::model
