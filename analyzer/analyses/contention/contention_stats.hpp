// Lock contention wait statistics, computed the way `perf lock contention -i FILE` (perf 6.1,
// tracepoint mode, default options) computes them from lock:contention_begin/end events:
//
// - Aggregation is by call stack (LOCK_AGGR_CALLER): the key of an event is the XOR of
//   hash_long(ip, 64) (a u32) over its first `max_stack` frames, leaving out the first `stack_skip` frames
//   and every frame that has a symbol and is a lock function. The row is named after the first
//   such frame that has a symbol and is not a lock function ("symbol+0xoff"), or "Unknown".
// - Begin and end pair per (thread, lock address). A begin while that pair is already waiting is
//   ignored (mutex spinning nests a second begin); an end looks its row up by ITS OWN call stack
//   and is ignored when no row has that key or no begin is pending.
// - Rows are sorted by a key (default total wait), descending; ties keep perf's hash-table order.
//
// Names come from a CallerNamer the caller supplies, so this file knows nothing of symbol tables.
// Memory is O(distinct keys + waits in flight): a pair is forgotten once its end arrives.
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lockscope/perf_data.hpp"

namespace lockscope::contention {

// One address of a callchain; `kernel` tells which address space names it.
struct Frame {
  uint64_t address = 0;
  bool kernel = true;
};

// How caller addresses are named. perf's rules need three answers per frame: does a symbol cover
// it, is it a lock function (in the kernel's lock or sched text), and its "symbol+0xoff" name.
class CallerNamer {
 public:
  virtual ~CallerNamer() = default;
  // Whether a symbol covers the address (perf's `node->ms.sym != NULL`).
  virtual bool has_symbol(const Frame& frame) = 0;
  // perf's is_lock_function(): the address lies in [__sched_text_start, __sched_text_end) or
  // [__lock_text_start, __lock_text_end).
  virtual bool is_lock_function(const Frame& frame) = 0;
  // "symbol+0xoff", or "symbol" when the offset is 0. Only asked when has_symbol() is true.
  virtual std::string name(const Frame& frame) = 0;
};

struct ContentionEvent {
  uint64_t time = 0;
  uint32_t tid = 0;
  uint64_t lock = 0;
  uint32_t flags = 0;             // `flags` of contention_begin (unused for end)
  std::span<const Frame> frames;  // innermost first, markers removed
};

// One row of the table, with perf's counters. `avg_wait_ns` is perf's: total wait divided by the
// number of ENDS counted (not by `contended`), as of the last end; 0 when none arrived.
struct ContentionRow {
  std::string caller;
  std::string_view type;
  uint32_t flags = 0;
  uint64_t contended = 0;
  uint64_t acquired = 0;
  uint64_t total_wait_ns = 0;
  uint64_t max_wait_ns = 0;
  uint64_t min_wait_ns = 0;  // 0 when no wait was measured (perf prints 0 for its ULLONG_MAX)
  uint64_t avg_wait_ns = 0;
  uint64_t key = 0;  // the call-stack hash
};

// perf's names of the lock types by contention_begin flags ("spinlock", "rwsem:R", ...).
std::string_view lock_type_name(uint32_t flags);

// perf's `-k` sort keys of `perf lock contention`.
enum class SortKey { contended, wait_total, wait_max, wait_min, avg_wait };
// "wait_total" -> SortKey::wait_total; throws Error on an unknown name.
SortKey sort_key_from_name(std::string_view name);

struct ContentionOptions {
  int max_stack = 8;   // perf's CONTENTION_STACK_DEPTH (--max-stack)
  int stack_skip = 3;  // perf's CONTENTION_STACK_SKIP (--stack-skip)
  SortKey sort_key = SortKey::wait_total;
};

class ContentionStats {
 public:
  ContentionStats(CallerNamer& namer, ContentionOptions options = {});

  void begin(const ContentionEvent& event);
  void end(const ContentionEvent& event);

  // All rows, sorted as perf prints them.
  std::vector<ContentionRow> rows() const;

  // The call-stack key perf computes for these frames (exposed for tests).
  uint64_t key_of(std::span<const Frame> frames);

  // Copies at most max_stack addresses of a recorded callchain into `out` (reused, no allocation
  // once it has grown), as perf's thread__resolve_callchain does: markers only switch the space.
  void frames_of(const perf::Callchain& chain, std::vector<Frame>& out) const;

  const ContentionOptions& options() const { return options_; }

 private:
  struct Entry {
    ContentionRow row;
    uint64_t wait_min = std::numeric_limits<uint64_t>::max();
    size_t created = 0;  // creation order, for perf's tie order
  };
  struct PairKey {
    uint32_t tid;
    uint64_t lock;
    bool operator==(const PairKey&) const = default;
  };
  struct PairHash {
    size_t operator()(const PairKey& pair) const { return std::hash<uint64_t>()(pair.lock * 31 + pair.tid); }
  };

  std::string caller_name(std::span<const Frame> frames);

  CallerNamer& namer_;
  ContentionOptions options_;
  std::unordered_map<uint64_t, Entry> entries_;
  using WaitingSince = std::unordered_map<PairKey, uint64_t, PairHash>;
  // Begin time of each (thread, lock) wait in flight.
  WaitingSince waiting_since_;
  // Nodes of finished waits, reused by the next begins so that steady state allocates nothing.
  std::vector<WaitingSince::node_type> spare_nodes_;
};

// perf's time column: "%9.2f ms" and the like in a 12-wide field, ns as an integer.
std::string format_wait_time(uint64_t ns);

// How many rows perf's -E N shows: N, but at least one.
size_t rows_to_print(size_t entries);

// The table as `perf lock contention` prints it by default (fields contended, total wait, max
// wait, avg wait; then type and caller), at most `entries` rows.
std::string format_table(const std::vector<ContentionRow>& rows, size_t entries);

}  // namespace lockscope::contention
