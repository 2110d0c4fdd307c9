// Facts taken from perf 6.1 tools/perf/builtin-lock.c: callchain_id(), lock_contention_caller(),
// report_lock_contention_begin_event(), report_lock_contention_end_event(), get_type_str(),
// lock_stat_key_print_time(), sort_result()/insert_to_result() and the contention_keys table.
#include "contention_stats.hpp"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>

#include "lockscope/error.hpp"
#include "lockscope/lock_events.hpp"

namespace lockscope::contention {
namespace {

// tools/include/linux/hash.h: hash_long() on a 64-bit machine is hash_64(), which multiplies by
// this constant, keeps the top `bits` bits and RETURNS A u32. With bits = 64 (callchain_id) that
// is the low 32 bits of the product, which depend only on the low 32 bits of the address: frames
// that differ only above bit 31 (garbage user frames such as 0x7fe000000000 and 0) hash alike.
constexpr uint64_t kGoldenRatio64 = 0x61C8864680B583EBull;
uint32_t hash_long(uint64_t value, unsigned bits) {
  return static_cast<uint32_t>(bits >= 64 ? value * kGoldenRatio64 : (value * kGoldenRatio64) >> (64 - bits));
}
// perf keeps lock_stats in a table of 1 << LOCKHASH_BITS buckets; its bucket order decides ties.
constexpr unsigned kLockHashBits = 12;

// perf's caller buffer is char[128]: longer names are cut to 127 characters.
constexpr size_t kCallerNameMax = 127;

using namespace contention_flags;

struct LockType {
  uint32_t flags;
  std::string_view name;
};
// perf 6.1 get_type_str(): the flags must match exactly, otherwise "unknown".
constexpr std::array kLockTypes = {
    LockType{0, "semaphore"},
    LockType{kSpin, "spinlock"},
    LockType{kSpin | kRead, "rwlock:R"},
    LockType{kSpin | kWrite, "rwlock:W"},
    LockType{kRead, "rwsem:R"},
    LockType{kWrite, "rwsem:W"},
    LockType{kRt, "rtmutex"},
    LockType{kRt | kRead, "rwlock-rt:R"},
    LockType{kRt | kWrite, "rwlock-rt:W"},
    LockType{kPercpu | kRead, "pcpu-sem:R"},
    LockType{kPercpu | kWrite, "pcpu-sem:W"},
    LockType{kMutex, "mutex"},
    LockType{kMutex | kSpin, "mutex"},
};

// perf reports wait_min of a row without waits as 0 (its ULLONG_MAX sentinel), also for sorting.
uint64_t sort_value(const ContentionRow& row, SortKey key) {
  switch (key) {
    case SortKey::contended: return row.contended;
    case SortKey::wait_total: return row.total_wait_ns;
    case SortKey::wait_max: return row.max_wait_ns;
    case SortKey::wait_min: return row.min_wait_ns;
    case SortKey::avg_wait: return row.avg_wait_ns;
  }
  return 0;
}

struct SortKeyName {
  std::string_view name;
  SortKey key;
};
constexpr std::array kSortKeys = {
    SortKeyName{"contended", SortKey::contended}, SortKeyName{"wait_total", SortKey::wait_total},
    SortKeyName{"wait_max", SortKey::wait_max},   SortKeyName{"wait_min", SortKey::wait_min},
    SortKeyName{"avg_wait", SortKey::avg_wait},
};

struct TimeUnit {
  float base;
  const char* unit;
};
// lock_stat_key_print_time(): the bases are floats and so is the division, which decides the
// rounding of the printed digits; below 1 us the value is printed as integer nanoseconds.
const std::array<TimeUnit, 5> kTimeUnits = {{
    {static_cast<float>(1e9 * 3600), "h "},
    {static_cast<float>(1e9 * 60), "m "},
    {static_cast<float>(1e9), "s "},
    {static_cast<float>(1e6), "ms"},
    {static_cast<float>(1e3), "us"},
}};
constexpr int kTimeWidth = 12;
constexpr int kCountWidth = 10;

}  // namespace

std::string_view lock_type_name(uint32_t flags) {
  for (const LockType& type : kLockTypes) {
    if (type.flags == flags) return type.name;
  }
  return "unknown";
}

SortKey sort_key_from_name(std::string_view name) {
  for (const SortKeyName& entry : kSortKeys) {
    if (entry.name == name) return entry.key;
  }
  throw Error("unknown sort key \"" + std::string(name) + "\"")
      .hint("use contended, wait_total, wait_max, wait_min or avg_wait");
}

ContentionStats::ContentionStats(CallerNamer& namer, ContentionOptions options) : namer_(namer), options_(options) {}

void ContentionStats::frames_of(const perf::Callchain& chain, std::vector<Frame>& out) const {
  out.clear();
  const size_t limit = options_.max_stack > 0 ? static_cast<size_t>(options_.max_stack) : 0;
  bool kernel = true;  // frames before any marker are the kernel's own
  for (uint64_t i = 0; i < chain.size() && out.size() < limit; ++i) {
    const uint64_t value = chain[i];
    if (perf::is_context_marker(value)) {
      const perf::FrameContext context = perf::frame_context_of_marker(value);
      kernel = context == perf::FrameContext::kernel || context == perf::FrameContext::guest_kernel;
      continue;
    }
    out.push_back(Frame{value, kernel});
  }
}

uint64_t ContentionStats::key_of(std::span<const Frame> frames) {
  uint64_t hash = 0;
  int seen = 0;
  for (const Frame& frame : frames) {
    if (seen == options_.max_stack) break;
    // The first stack_skip frames are the tracepoint and lock internals: never part of the key.
    if (++seen <= options_.stack_skip) continue;
    if (namer_.has_symbol(frame) && namer_.is_lock_function(frame)) continue;
    hash ^= hash_long(frame.address, 64);
  }
  return hash;
}

std::string ContentionStats::caller_name(std::span<const Frame> frames) {
  int seen = 0;
  for (const Frame& frame : frames) {
    if (seen == options_.max_stack) break;
    if (++seen <= options_.stack_skip) continue;
    if (namer_.has_symbol(frame) && !namer_.is_lock_function(frame)) {
      std::string name = namer_.name(frame);
      if (name.size() > kCallerNameMax) name.resize(kCallerNameMax);
      return name;
    }
  }
  return "Unknown";
}

void ContentionStats::begin(const ContentionEvent& event) {
  const uint64_t key = key_of(event.frames);
  auto found = entries_.find(key);
  if (found == entries_.end()) {
    // A row is named and typed by the first begin that creates its key.
    Entry entry;
    entry.row.caller = caller_name(event.frames);
    entry.row.flags = event.flags;
    entry.row.type = lock_type_name(event.flags);
    entry.row.key = key;
    entry.created = entries_.size();
    found = entries_.emplace(key, std::move(entry)).first;
  }
  // A second begin while this thread already waits for this lock (mutex optimistic spinning, then
  // sleeping) keeps the first begin's time and is not counted again.
  const PairKey pair{event.tid, event.lock};
  if (waiting_since_.contains(pair)) return;
  if (spare_nodes_.empty()) {
    waiting_since_.emplace(pair, event.time);
  } else {
    WaitingSince::node_type node = std::move(spare_nodes_.back());
    spare_nodes_.pop_back();
    node.key() = pair;
    node.mapped() = event.time;
    waiting_since_.insert(std::move(node));
  }
  ++found->second.row.contended;
}

void ContentionStats::end(const ContentionEvent& event) {
  // perf finds the row by the END event's own call stack; an end whose stack matches no row is
  // dropped and leaves its begin pending.
  auto found = entries_.find(key_of(event.frames));
  if (found == entries_.end()) return;
  auto waiting = waiting_since_.find(PairKey{event.tid, event.lock});
  if (waiting == waiting_since_.end()) return;           // no begin pending: an orphan end
  const uint64_t waited = event.time - waiting->second;  // unsigned, like perf's u64
  spare_nodes_.push_back(waiting_since_.extract(waiting));

  Entry& entry = found->second;
  ContentionRow& row = entry.row;
  row.total_wait_ns += waited;
  entry.wait_min = std::min(entry.wait_min, waited);
  row.max_wait_ns = std::max(row.max_wait_ns, waited);
  ++row.acquired;
  row.avg_wait_ns = row.total_wait_ns / row.acquired;
}

std::vector<ContentionRow> ContentionStats::rows() const {
  struct Ordered {
    uint64_t bucket;
    size_t created;
    const Entry* entry;
  };
  std::vector<Ordered> order;
  order.reserve(entries_.size());
  for (const auto& [key, entry] : entries_) {
    order.push_back(Ordered{hash_long(key, kLockHashBits), entry.created, &entry});
  }
  // perf walks its hash table bucket by bucket, each bucket newest first (hlist_add_head), and
  // inserts into an rbtree where equal keys go right: a stable sort of that walk.
  std::sort(order.begin(), order.end(), [](const Ordered& a, const Ordered& b) {
    return a.bucket != b.bucket ? a.bucket < b.bucket : a.created > b.created;
  });
  std::vector<ContentionRow> rows;
  rows.reserve(order.size());
  for (const Ordered& item : order) {
    ContentionRow row = item.entry->row;
    row.min_wait_ns = item.entry->wait_min == std::numeric_limits<uint64_t>::max() ? 0 : item.entry->wait_min;
    rows.push_back(std::move(row));
  }
  const SortKey key = options_.sort_key;
  std::stable_sort(rows.begin(), rows.end(), [key](const ContentionRow& a, const ContentionRow& b) {
    return sort_value(a, key) > sort_value(b, key);
  });
  return rows;
}

std::string format_wait_time(uint64_t ns) {
  char buffer[64];
  for (const TimeUnit& unit : kTimeUnits) {
    if (static_cast<float>(ns) < unit.base) continue;
    const float value = static_cast<float>(ns) / unit.base;
    snprintf(buffer, sizeof buffer, "%*.2f %s", kTimeWidth - 3, static_cast<double>(value), unit.unit);
    return buffer;
  }
  snprintf(buffer, sizeof buffer, "%*" PRIu64 " %s", kTimeWidth - 3, ns, "ns");
  return buffer;
}

size_t rows_to_print(size_t entries) {
  // perf prints a row before it checks `++printed >= print_nr_entries`: -E 0 still shows one.
  return std::max<size_t>(entries, 1);
}

std::string format_table(const std::vector<ContentionRow>& rows, size_t entries) {
  std::string out;
  char buffer[256];
  snprintf(buffer, sizeof buffer, "%*s %*s %*s %*s   %10s   %s\n\n", kCountWidth, "contended", kTimeWidth, "total wait",
           kTimeWidth, "max wait", kTimeWidth, "avg wait", "type", "caller");
  out += buffer;
  size_t printed = 0;
  for (const ContentionRow& row : rows) {
    if (printed++ == rows_to_print(entries)) break;
    snprintf(buffer, sizeof buffer, "%*" PRIu64 " ", kCountWidth, row.contended);
    out += buffer;
    for (uint64_t ns : {row.total_wait_ns, row.max_wait_ns, row.avg_wait_ns}) {
      out += format_wait_time(ns);
      out += ' ';
    }
    snprintf(buffer, sizeof buffer, "  %10.*s   ", static_cast<int>(row.type.size()), row.type.data());
    out += buffer;
    out += row.caller;
    out += '\n';
  }
  return out;
}

}  // namespace lockscope::contention
