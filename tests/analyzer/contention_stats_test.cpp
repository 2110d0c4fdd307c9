// ContentionStats on in-memory event sequences: pairing, nesting, missing begin or end, the wait
// statistics, lock type names, caller choice and perf's time formatting.
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <vector>

#include "contention_stats.hpp"
#include "lockscope/error.hpp"

using namespace lockscope::contention;

namespace {

// Addresses 0x1000.. are "functions" named fN; 0x9000.. are lock functions; 0x5000 has no symbol.
class FakeNamer final : public CallerNamer {
 public:
  bool has_symbol(const Frame& frame) override { return frame.kernel && frame.address != 0x5000; }
  bool is_lock_function(const Frame& frame) override { return frame.address >= 0x9000; }
  std::string name(const Frame& frame) override {
    const uint64_t base = frame.address & ~0xffull;
    const uint64_t offset = frame.address & 0xff;
    char text[64];
    if (offset == 0) {
      snprintf(text, sizeof text, "f%llx", static_cast<unsigned long long>(base));
    } else {
      snprintf(text, sizeof text, "f%llx+0x%llx", static_cast<unsigned long long>(base),
               static_cast<unsigned long long>(offset));
    }
    return text;
  }
};

// Three skipped frames (tracepoint and lock internals), then the stack that names the row.
std::vector<Frame> stack(std::initializer_list<uint64_t> after_skip) {
  std::vector<Frame> frames{{0x9100, true}, {0x9200, true}, {0x1f00, true}};
  for (uint64_t address : after_skip) frames.push_back({address, true});
  return frames;
}

struct Recorder {
  FakeNamer namer;
  ContentionStats stats{namer};
  void begin(uint64_t time, uint32_t tid, uint64_t lock, uint32_t flags, const std::vector<Frame>& frames) {
    stats.begin(ContentionEvent{time, tid, lock, flags, frames});
  }
  void end(uint64_t time, uint32_t tid, uint64_t lock, const std::vector<Frame>& frames) {
    stats.end(ContentionEvent{time, tid, lock, 0, frames});
  }
};

constexpr uint32_t kSpin = 1, kRead = 2, kWrite = 4, kMutex = 32;

}  // namespace

TEST_CASE("one row per call stack with count, total, max, min and perf's average") {
  Recorder r;
  const auto a = stack({0x1010, 0x1100});
  r.begin(100, 1, 0xaa, kSpin, a);
  r.end(400, 1, 0xaa, a);  // 300
  r.begin(500, 2, 0xaa, kSpin, a);
  r.end(600, 2, 0xaa, a);  // 100
  r.begin(700, 3, 0xbb, kSpin, a);
  r.end(1200, 3, 0xbb, a);  // 500
  const auto rows = r.stats.rows();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].caller == "f1000+0x10");
  CHECK(rows[0].type == "spinlock");
  CHECK(rows[0].contended == 3);
  CHECK(rows[0].total_wait_ns == 900);
  CHECK(rows[0].max_wait_ns == 500);
  CHECK(rows[0].min_wait_ns == 100);
  CHECK(rows[0].avg_wait_ns == 300);
}

TEST_CASE("a begin while the same thread already waits for the lock is ignored") {
  Recorder r;
  const auto a = stack({0x1010});
  r.begin(100, 1, 0xaa, kMutex, a);
  r.begin(150, 1, 0xaa, kMutex, a);  // mutex: spinning, then sleeping
  r.end(400, 1, 0xaa, a);
  const auto rows = r.stats.rows();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].contended == 1);
  CHECK(rows[0].total_wait_ns == 300);
}

TEST_CASE("waits pair per thread and lock, not per lock") {
  Recorder r;
  const auto a = stack({0x1010});
  r.begin(100, 1, 0xaa, kSpin, a);
  r.begin(200, 2, 0xaa, kSpin, a);
  r.end(250, 2, 0xaa, a);  // 50
  r.end(300, 1, 0xaa, a);  // 200
  const auto rows = r.stats.rows();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].contended == 2);
  CHECK(rows[0].total_wait_ns == 250);
  CHECK(rows[0].min_wait_ns == 50);
  CHECK(rows[0].max_wait_ns == 200);
}

TEST_CASE("an end without a begin, or a second end, counts nothing") {
  Recorder r;
  const auto a = stack({0x1010});
  r.begin(100, 1, 0xaa, kSpin, a);
  r.end(200, 1, 0xaa, a);
  r.end(300, 1, 0xaa, a);  // second end
  r.end(400, 2, 0xaa, a);  // thread 2 never began
  const auto rows = r.stats.rows();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].contended == 1);
  CHECK(rows[0].total_wait_ns == 100);
}

TEST_CASE("a begin without an end is contended but has no wait, and avg divides by ends") {
  Recorder r;
  const auto a = stack({0x1010});
  r.begin(100, 1, 0xaa, kRead, a);
  r.end(400, 1, 0xaa, a);
  r.begin(500, 2, 0xaa, kRead, a);  // never ends
  const auto rows = r.stats.rows();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].type == "rwsem:R");
  CHECK(rows[0].contended == 2);
  CHECK(rows[0].total_wait_ns == 300);
  CHECK(rows[0].avg_wait_ns == 300);  // perf divides by the ends seen, not by contended

  Recorder only_begin;
  only_begin.begin(100, 1, 0xaa, kWrite, a);
  const auto lone = only_begin.stats.rows();
  REQUIRE(lone.size() == 1);
  CHECK(lone[0].contended == 1);
  CHECK(lone[0].total_wait_ns == 0);
  CHECK(lone[0].min_wait_ns == 0);
  CHECK(lone[0].avg_wait_ns == 0);
}

TEST_CASE("an end is counted in the row of its own call stack, and dropped when none matches") {
  Recorder r;
  const auto a = stack({0x1010});
  const auto b = stack({0x1110});
  const auto c = stack({0x1210});
  r.begin(100, 1, 0xaa, kSpin, a);
  r.begin(100, 2, 0xbb, kSpin, b);
  r.end(300, 1, 0xaa, b);  // lands in b's row
  r.end(300, 2, 0xbb, c);  // no row for c: dropped, thread 2 keeps waiting
  r.end(900, 2, 0xbb, b);
  const auto rows = r.stats.rows();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].caller == "f1100+0x10");
  CHECK(rows[0].total_wait_ns == 200 + 800);
  CHECK(rows[1].caller == "f1000+0x10");
  CHECK(rows[1].total_wait_ns == 0);
}

TEST_CASE("the key skips stack_skip frames and lock functions, other frames all count") {
  Recorder r;
  // Same caller, different outer frames: two rows, like perf's separate munmap rows.
  const auto a = stack({0x1010, 0x1100});
  const auto b = stack({0x1010, 0x1200});
  CHECK(r.stats.key_of(a) != r.stats.key_of(b));
  // Lock functions after the skipped frames do not change the key; unnamed frames do.
  CHECK(r.stats.key_of(stack({0x9300, 0x1010, 0x1100})) == r.stats.key_of(a));
  CHECK(r.stats.key_of(stack({0x5000, 0x1010, 0x1100})) != r.stats.key_of(a));
  // perf's hash_long() returns a u32, so frames equal in their low 32 bits hash alike: garbage
  // user frames 0x7fe000000000 and 0 give the same key (perf merges such stacks into one row).
  auto high = a;
  high.push_back({0x7fe000000000, false});
  auto zero = a;
  zero.push_back({0, false});
  CHECK(r.stats.key_of(high) == r.stats.key_of(zero));
  CHECK(r.stats.key_of(zero) == r.stats.key_of(a));
  auto low = a;
  low.push_back({0x558826da1df0, false});
  CHECK(r.stats.key_of(low) != r.stats.key_of(a));
  // The skipped frames themselves never matter.
  auto other_inner = a;
  other_inner[0].address = 0x1234;
  CHECK(r.stats.key_of(other_inner) == r.stats.key_of(a));
  // Only max_stack frames are used.
  CHECK(r.stats.key_of(stack({0x1010, 0x1100, 0x1200, 0x1300, 0x1400, 0x1500})) ==
        r.stats.key_of(stack({0x1010, 0x1100, 0x1200, 0x1300, 0x1400})));
}

TEST_CASE("the caller is the first named non-lock frame after the skipped ones") {
  Recorder r;
  r.begin(1, 1, 0xaa, kSpin, stack({0x9300, 0x5000, 0x1400, 0x1500}));
  r.begin(1, 2, 0xbb, kSpin, stack({0x9300, 0x1600}));
  r.begin(1, 3, 0xcc, kSpin, stack({0x9300}));
  std::set<std::string> callers;
  for (const auto& row : r.stats.rows()) callers.insert(row.caller);
  CHECK(callers == std::set<std::string>{"f1400", "f1600", "Unknown"});
}

TEST_CASE("lock types are perf's names for the exact flags") {
  CHECK(lock_type_name(0) == "semaphore");
  CHECK(lock_type_name(kSpin) == "spinlock");
  CHECK(lock_type_name(kSpin | kRead) == "rwlock:R");
  CHECK(lock_type_name(kSpin | kWrite) == "rwlock:W");
  CHECK(lock_type_name(kRead) == "rwsem:R");
  CHECK(lock_type_name(kWrite) == "rwsem:W");
  CHECK(lock_type_name(8) == "rtmutex");
  CHECK(lock_type_name(16 | kRead) == "pcpu-sem:R");
  CHECK(lock_type_name(16 | kWrite) == "pcpu-sem:W");
  CHECK(lock_type_name(kMutex) == "mutex");
  CHECK(lock_type_name(kMutex | kSpin) == "mutex");
  CHECK(lock_type_name(64) == "unknown");
}

TEST_CASE("rows sort by the chosen key, descending") {
  FakeNamer namer;
  ContentionOptions options;
  options.sort_key = sort_key_from_name("contended");
  ContentionStats stats(namer, options);
  const auto a = stack({0x1010});
  const auto b = stack({0x1110});
  stats.begin({0, 1, 0xaa, kSpin, a});
  stats.end({1000, 1, 0xaa, 0, a});
  stats.begin({0, 2, 0xbb, kSpin, b});
  stats.end({10, 2, 0xbb, 0, b});
  stats.begin({20, 2, 0xbb, kSpin, b});
  stats.end({30, 2, 0xbb, 0, b});
  auto rows = stats.rows();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].caller == "f1100+0x10");

  Recorder by_total;
  by_total.begin(0, 1, 0xaa, kSpin, a);
  by_total.end(1000, 1, 0xaa, a);
  by_total.begin(0, 2, 0xbb, kSpin, b);
  by_total.end(10, 2, 0xbb, b);
  rows = by_total.stats.rows();
  CHECK(rows[0].caller == "f1000+0x10");
  CHECK_THROWS_AS(sort_key_from_name("bogus"), lockscope::Error);
}

TEST_CASE("wait times print with perf's units and widths") {
  CHECK(format_wait_time(0) == "        0 ns");
  CHECK(format_wait_time(999) == "      999 ns");
  CHECK(format_wait_time(1000) == "     1.00 us");
  CHECK(format_wait_time(542010) == "   542.01 us");
  CHECK(format_wait_time(7120000) == "     7.12 ms");
  CHECK(format_wait_time(2500000000ull) == "     2.50 s ");
  CHECK(format_wait_time(90ull * 1000000000ull) == "     1.50 m ");
  CHECK(format_wait_time(7200ull * 1000000000ull) == "     2.00 h ");
  // The comparison is in float, as in perf: 999999999 ns rounds up to 1e9 and prints as seconds.
  CHECK(format_wait_time(999999999) == "     1.00 s ");
}

TEST_CASE("the table has perf's header and columns") {
  ContentionRow row;
  row.caller = "do_madvise+0x115";
  row.type = "rwsem:R";
  row.contended = 18;
  row.total_wait_ns = 7120000;
  row.max_wait_ns = 1810000;
  row.avg_wait_ns = 395650;
  const std::string table = format_table({row}, 10);
  CHECK(table ==
        " contended   total wait     max wait     avg wait         type   caller\n\n"
        "        18      7.12 ms      1.81 ms    395.65 us      rwsem:R   do_madvise+0x115\n");
  CHECK(format_table({row, row}, 1) == format_table({row}, 10));
  CHECK(format_table({row, row}, 0) == format_table({row}, 10));  // perf's -E 0 shows one row
}
