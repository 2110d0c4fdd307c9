// Who holds which lock: the holder–lock model built from a recording's lock events. Holders are
// processes (or threads, or the interrupt contexts that took a lock); per (holder, lock) pair it
// keeps counts, flavours, contexts and only the first call stack(s), interned, so memory grows
// with distinct pairs and stacks, never with samples. Internal to analyzer/.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "lock_event_feed.hpp"
#include "lockscope/lock_events.hpp"
#include "lockscope/perf_data.hpp"
#include "lockscope/probe_table.hpp"
#include "thread_names.hpp"

namespace lockscope::model {

// How the lock was seen being taken. The first six are the probe table's lock kinds; contention
// recordings add the kinds the contention tracepoint's flags can name.
enum class Access : uint8_t {
  spinlock,
  rwlock_read,
  rwlock_write,
  mutex,
  rwsem_read,
  rwsem_write,
  percpu_rwsem_read,
  percpu_rwsem_write,
  rt_mutex,
  unknown,
};
constexpr size_t kAccessCount = 10;
std::string_view access_name(Access access);
// The access kinds of a mask of Access bits, comma-separated: "rwlock-read,rwlock-write".
std::string access_names(uint32_t mask);
Access access_from_kind(probes::LockKind kind);
// lock:contention_begin's flags (lockscope::contention_flags).
Access access_from_contention_flags(uint32_t flags);

// Flavours as a bit set: the probe table's flavours, plus what a trylock's result said.
enum class FlavourBit : uint8_t {
  trylock_taken = 16,
  trylock_failed = 17,
  contended = 18,  // a contention recording: this acquisition had to wait
};
std::vector<std::string> flavour_names(uint32_t mask);
uint32_t flavour_bit(probes::Flavour flavour);

enum class GroupBy { process, thread };

struct Options {
  GroupBy group_by = GroupBy::process;
  bool irq_as_task = false;  // count interrupt-context acquisitions under the interrupted task
  size_t stacks_per_pair = 1;
  std::optional<uint64_t> window_start_ns, window_end_ns;  // absolute sample times
};

struct Holder {
  int64_t pid = 0;          // tgid (or tid with GroupBy::thread); -1 for pseudo-holders
  uint32_t generation = 0;  // a pid reused later in the recording is a new holder
  std::string comm;
  ExecContext pseudo_context = ExecContext::task;  // not task: [hardirq], [softirq], [nmi]
  bool kernel_thread_by_fork = false;              // forked by kthreadd (pid 2)
  bool saw_user_frames = false;
  bool is_pseudo() const { return pseudo_context != ExecContext::task; }
  bool is_idle() const { return pid == 0 && !is_pseudo(); }
  // The idle task (0), kthreadd (2) and what it forked, or a task never seen in user space.
  bool is_kernel_thread() const {
    return !is_pseudo() && (pid == 0 || pid == 2 || kernel_thread_by_fork || !saw_user_frames);
  }
  std::string label() const;  // "mkdir[245]", "[hardirq]"
};

struct Lock {
  uint64_t address = 0;
  uint32_t access_mask = 0;  // bits of Access seen over all holders
};

constexpr size_t kMaxInterruptedTasks = 8;

struct HolderLock {
  uint32_t holder = 0;
  uint32_t lock = 0;
  uint64_t acquisitions = 0;
  uint32_t access_mask = 0;
  uint32_t flavour_mask = 0;
  uint8_t context_mask = 0;        // bits of ExecContext
  uint64_t irqs_off_at_entry = 0;  // acquisitions whose probe saw irqs already off
  uint64_t trylock_failed = 0;
  uint64_t first_time = 0;
  std::vector<uint32_t> stacks;               // interned stack ids, first one first, at most stacks_per_pair
  std::vector<uint32_t> interrupted_holders;  // for pseudo-holders: tasks they interrupted
  uint64_t interrupted_more = 0;              // beyond kMaxInterruptedTasks

  // A task this pseudo-holder interrupted: the first kMaxInterruptedTasks distinct ones by
  // name, the others counted.
  void add_interrupted(uint32_t task);
};

// Identical kernel stacks are stored once, all frames in one array.
class StackTable {
 public:
  uint32_t intern(std::span<const uint64_t> frames);
  std::span<const uint64_t> frames(uint32_t id) const;
  size_t size() const { return offsets_.size(); }

 private:
  std::vector<uint64_t> frames_;
  std::vector<std::pair<uint32_t, uint32_t>> offsets_;  // (start, count) per id
  std::unordered_multimap<uint64_t, uint32_t> ids_by_hash_;
};

struct ModelStats {
  uint64_t samples = 0;  // of any event: a report without lock events says what the file held
  uint64_t lock_events = 0;
  uint64_t acquisitions = 0;
  uint64_t releases = 0;
  uint64_t trylock_results_without_entry = 0;   // return probe without its entry probe
  uint64_t trylock_entries_without_result = 0;  // counted as acquisitions, result unknown
  uint64_t outside_window = 0;
  uint64_t events_without_lock = 0;
  uint64_t first_time = 0, last_time = 0;
  uint64_t contention_begins = 0;
  // Lock events of a sampled recording (perf record -F, or -c N with N > 1) and how many events
  // they stand for: their recorded periods, or N each when the period was not recorded.
  uint64_t sampled_lock_events = 0;
  uint64_t events_sampled_stand_for = 0;
  std::vector<std::string> event_names_ignored;
};

class HolderModel final : public LockEventConsumer {
 public:
  explicit HolderModel(Options options) : options_(options) {}

  void on_lock_events_known(const LockEventDecoder& decoder, std::span<const EventRole> roles) override;
  void on_comm(const perf::CommRecord& comm) override;
  void on_fork(const perf::TaskRecord& task) override;
  void on_mmap(const perf::MmapRecord& map) override;
  void on_sample(const perf::Sample& sample) override;
  void on_lock_event(const perf::Sample& sample, const LockEvent& event, const EventRole& role) override;
  void on_trylock(const TrylockOutcome& trylock) override;
  void on_trylock_result_without_entry(const perf::Sample& sample) override;

  const std::vector<Holder>& holders() const { return holders_; }
  const std::vector<Lock>& locks() const { return locks_; }
  const std::vector<HolderLock>& pairs() const { return pairs_; }
  const StackTable& stacks() const { return stacks_; }
  const ModelStats& stats() const { return stats_; }
  // The recording's events, once the metadata was read (nullopt: nothing was recorded).
  const std::optional<LockEventDecoder::EventsSummary>& events_summary() const { return events_summary_; }
  bool is_contention_recording() const { return stats_.contention_begins > 0; }
  // Runtime address of the kernel's _text (the [kernel.kallsyms]_text map's pgoff), for KASLR.
  std::optional<uint64_t> kernel_text_address() const { return kernel_text_; }

 private:
  struct ThreadState {
    int64_t pid = -1;
    // The task holder of this thread, valid while no COMM or FORK came since (holder_epoch_).
    uint32_t cached_holder = 0;
    uint64_t cached_epoch = 0;
  };
  struct ProcessState {
    uint32_t generation = 0;
    bool forked_by_kthreadd = false;
  };
  struct Acquisition {
    uint32_t tid;
    int64_t pid;
    uint64_t lock;
    uint64_t time;
    Access access;
    uint32_t flavour_mask;
    ExecContext context;
    bool irqs_off;
    bool user_frames;
    std::span<const uint64_t> kernel_frames;  // or empty with a stack id
    std::optional<uint32_t> stack_id;
    uint64_t trylock_failed = 0;
  };

  void record(const Acquisition& acquisition);
  uint32_t holder_for(const Acquisition& acquisition, ThreadState& thread);
  uint32_t task_holder_for(const Acquisition& acquisition, ThreadState& thread);
  uint32_t lock_for(uint64_t address);
  HolderLock& pair_for(uint32_t holder, uint32_t lock);
  ThreadState& thread(uint32_t tid);
  std::string_view comm_for_holder(uint32_t tid, int64_t pid);
  Acquisition acquisition_of(const perf::Sample& sample, const LockEvent& event);
  bool outside_window(uint64_t time) const {
    return (options_.window_start_ns && time < *options_.window_start_ns) ||
           (options_.window_end_ns && time > *options_.window_end_ns);
  }

  Options options_;
  std::optional<LockEventDecoder::EventsSummary> events_summary_;
  std::vector<Holder> holders_;
  std::vector<Lock> locks_;
  std::vector<HolderLock> pairs_;
  StackTable stacks_;
  ModelStats stats_;
  std::unordered_map<uint32_t, ThreadState> threads_;
  ThreadNames names_;
  std::unordered_map<int64_t, ProcessState> processes_;
  // (pid, generation, comm, pseudo context) -> holder index
  std::unordered_map<std::string, uint32_t> holder_ids_;
  std::array<std::optional<uint32_t>, 4> pseudo_holders_;  // by ExecContext
  uint64_t holder_epoch_ = 1;  // bumped by COMM and FORK, which can change a thread's holder
  std::unordered_map<uint64_t, uint32_t> lock_ids_;
  std::unordered_map<uint64_t, uint32_t> pair_ids_;  // (holder << 32 | lock)
  std::vector<uint64_t> frame_buffer_;
  std::optional<uint64_t> kernel_text_;
};

}  // namespace lockscope::model
