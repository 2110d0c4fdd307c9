// Writes a small perf.data of lock:contention_begin/end events that exercises the pairing rules
// perf lock contention has (nested begins, a begin without end, orphan and double ends, an end
// whose call stack belongs to another row or to none, unusual flags, a stack of lock functions
// only). The frames are real kernel addresses the caller passes in, so that perf itself can name
// them from /proc/kallsyms and serve as the oracle (see edge_cases_test.sh).
//
// usage: make_contention_recording OUT LOCK1 LOCK2 SKIPPED F2 F3 F4 F5 F6 F0 TEXT ETEXT
//   LOCK1, LOCK2: addresses in the sched or lock text; SKIPPED: any code address (third frame);
//   F2..F6: code addresses outside the lock functions; F0: the first byte of a function;
//   TEXT, ETEXT: _text and _etext, for the kernel map perf needs to name the frames.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "perf_data_builder.hpp"

namespace {

using namespace lockscope::testing;

using namespace lockscope::testing::contention_layout;
constexpr uint32_t kSpin = 1, kRead = 2, kWrite = 4, kMutex = 32, kNoSuchType = 64;

struct Writer {
  PerfDataBuilder builder;
  size_t begin_event = 0, end_event = 0;

  void event(bool begin, uint64_t time, uint32_t tid, uint64_t lock, uint32_t value,
             const std::vector<uint64_t>& frames) {
    SampleFields sample;
    sample.ip = frames.front();
    sample.pid = tid;
    sample.tid = tid;
    sample.time = time;
    sample.cpu = tid % 2;
    sample.callchain.push_back(kContextKernel);
    sample.callchain.insert(sample.callchain.end(), frames.begin(), frames.end());
    ByteWriter raw;
    raw.put_bytes(trace_payload(begin ? kBeginId : kEndId, 0, 0, static_cast<int32_t>(tid), {lock}));
    raw.put<uint32_t>(value);  // begin: flags; end: ret
    sample.raw = raw.bytes;
    builder.sample(begin ? begin_event : end_event, sample);
  }
  void begin(uint64_t time, uint32_t tid, uint64_t lock, uint32_t flags, const std::vector<uint64_t>& frames) {
    event(true, time, tid, lock, flags, frames);
  }
  void end(uint64_t time, uint32_t tid, uint64_t lock, const std::vector<uint64_t>& frames) {
    event(false, time, tid, lock, 0, frames);
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 13) {
    std::fprintf(stderr, "usage: %s OUT LOCK1 LOCK2 SKIPPED F2 F3 F4 F5 F6 F0 TEXT ETEXT\n", argv[0]);
    return 2;
  }
  std::vector<uint64_t> a;
  for (int i = 2; i < argc; ++i) a.push_back(std::strtoull(argv[i], nullptr, 16));
  const uint64_t lock1 = a[0], lock2 = a[1], skipped = a[2], f2 = a[3], f3 = a[4], f4 = a[5], f5 = a[6], f6 = a[7],
                 f0 = a[8], text = a[9], etext = a[10];
  auto stack = [&](uint64_t first, uint64_t second) {
    return std::vector<uint64_t>{lock1, lock2, skipped, first, second};
  };

  Writer w;
  w.builder.set_tracing_data(
      tracing_data({{"lock", {contention_begin_format(kBeginId), contention_end_format(kEndId)}}}));
  w.begin_event = w.builder.add_event(tracepoint_attr(kBeginId, kSampleType), "lock:contention_begin", {1});
  w.end_event = w.builder.add_event(tracepoint_attr(kEndId, kSampleType), "lock:contention_end", {2});
  // As perf record writes it first: the kernel text map, pgoff = runtime _text.
  w.builder.kernel_mmap(text, etext - text, text, {UINT32_MAX, 0, 0, 0});

  const uint64_t lock_a = 0xffff888100000a00, lock_b = 0xffff888100000b00;
  // Row A (rwsem:W): two threads, then a nested begin that keeps the first begin's time.
  w.begin(1000, 11, lock_a, kWrite, stack(f2, f3));
  w.begin(1100, 12, lock_a, kWrite, stack(f2, f3));
  w.end(1200, 12, lock_a, stack(f2, f3));
  w.end(1300, 11, lock_a, stack(f2, f3));
  w.begin(2000, 11, lock_a, kWrite, stack(f2, f3));
  w.begin(2100, 11, lock_a, kWrite, stack(f2, f3));
  w.end(2500, 11, lock_a, stack(f2, f3));
  // Row B (spinlock): a begin that never ends.
  w.begin(3000, 13, lock_b, kSpin, stack(f3, f4));
  // Row C (unknown flags): its end carries row A's stack, so the wait lands in row A.
  w.begin(4000, 14, lock_b, kNoSuchType, stack(f4, f5));
  w.end(4600, 14, lock_b, stack(f2, f3));
  // Row D (semaphore): an end with a stack no row has is dropped; the later one counts.
  w.begin(5000, 15, lock_a, 0, stack(f5, f6));
  w.end(5100, 15, lock_a, stack(f6, f2));
  w.end(5400, 15, lock_a, stack(f5, f6));
  // An orphan end, and a second end of a finished wait: nothing.
  w.end(6000, 16, lock_b, stack(f2, f3));
  w.end(6100, 12, lock_a, stack(f2, f3));
  // Row E (mutex): only lock functions after the skipped frames: "Unknown".
  w.begin(7000, 17, lock_a, kMutex, stack(lock1, lock2));
  w.end(7050, 17, lock_a, stack(lock1, lock2));
  // Row F (rwlock:R): the caller is the first byte of a function: no "+0x0".
  w.begin(8000, 18, lock_b, kSpin | kRead, stack(f0, f3));
  w.end(8800, 18, lock_b, stack(f0, f3));
  w.builder.finished_round();

  const ByteVector bytes = w.builder.file_mode();
  std::ofstream out(argv[1], std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return out ? 0 : 1;
}
