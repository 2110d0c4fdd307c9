// Writes a lockrec-style recording (group "lockrec", with release probes) of what the guest test
// module tests/guest/lockdep-module makes, with a FILE.kallsyms side file naming the module's
// locks and functions, for the command-line test of lockdep's findings:
//   make_lockdep_recording OUT.perf.data [--clean] [--repeat N]
// --clean leaves out the bugs: the timer's lock is taken in process context only with irqsave,
// and both threads take the locks in one order. --repeat N runs the two threads' part N times, for
// measuring the replay on a larger recording.
#include <cstdio>
#include <fstream>
#include <string>

#include "recording.hpp"

using namespace lockscope::testing;

namespace {

// The module as kallsyms lists it once loaded, and the kernel's lock functions.
constexpr uint64_t kIrqLock = 0xffffffffc0a03078, kSpinA = 0xffffffffc0a03074, kSpinB = 0xffffffffc0a03070;
constexpr uint64_t kMutexA = 0xffffffffc0a02080, kMutexB = 0xffffffffc0a02060;
constexpr uint64_t kTimerFn = 0xffffffffc0a01180, kInProcess = 0xffffffffc0a01000;
constexpr uint64_t kSpinAThenB = 0xffffffffc0a01200, kSpinBThenA = 0xffffffffc0a01250;
constexpr uint64_t kMutexAThenB = 0xffffffffc0a01310, kMutexBThenA = 0xffffffffc0a013a0;

constexpr const char* kKallsyms =
    "ffffffff81000000 T _text\n"
    "ffffffff81a00000 T _raw_spin_lock\n"
    "ffffffff81a00100 T _raw_spin_unlock\n"
    "ffffffff81a00200 T _raw_spin_lock_irqsave\n"
    "ffffffff81a00300 T mutex_lock\n"
    "ffffffff82000000 T _etext\n"
    "ffffffff83000000 B _end\n"
    "ffffffffc0a01000 t lockscope_irq_lock_in_process\t[lockscope_lockdep]\n"
    "ffffffffc0a01180 t lockscope_timer_fn\t[lockscope_lockdep]\n"
    "ffffffffc0a01200 t lockscope_spin_a_then_b\t[lockscope_lockdep]\n"
    "ffffffffc0a01250 t lockscope_spin_b_then_a\t[lockscope_lockdep]\n"
    "ffffffffc0a01310 t lockscope_mutex_a_then_b\t[lockscope_lockdep]\n"
    "ffffffffc0a013a0 t lockscope_mutex_b_then_a\t[lockscope_lockdep]\n"
    "ffffffffc0a02060 d lockscope_mutex_b\t[lockscope_lockdep]\n"
    "ffffffffc0a02080 d lockscope_mutex_a\t[lockscope_lockdep]\n"
    "ffffffffc0a03070 b lockscope_spin_b\t[lockscope_lockdep]\n"
    "ffffffffc0a03074 b lockscope_spin_a\t[lockscope_lockdep]\n"
    "ffffffffc0a03078 b lockscope_irq_lock\t[lockscope_lockdep]\n"
    "ffffffffc0a0307c b lockscope_counter\t[lockscope_lockdep]\n";

void nest(Recording& rec, uint32_t tid, const std::string& lock, const std::string& unlock, uint64_t outer,
          uint64_t inner, uint64_t function) {
  rec.event(lock, tid, tid, {outer}, function + 0x11, 0, false);
  rec.event(lock, tid, tid, {inner}, function + 0x1d, 0, false);
  rec.event(unlock, tid, tid, {inner}, function + 0x34, 0, false);
  rec.event(unlock, tid, tid, {outer}, function + 0x40, 0, false);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_lockdep_recording OUT.perf.data [--clean]\n");
    return 2;
  }
  std::string out = argv[1];
  bool clean = false;
  long repeat = 1;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--clean") clean = true;
    if (arg == "--repeat" && i + 1 < argc) repeat = std::stol(argv[++i]);
  }
  Recording rec("lockrec");
  rec.comm(300, 300, "insmod");
  for (int fire = 0; fire < 5; ++fire) {  // the hrtimer, in hardirq over insmod
    rec.event("_raw_spin_lock", 300, 300, {kIrqLock}, kTimerFn + 0x10, kHardirq | kIrqsOff);
    rec.event("_raw_spin_unlock", 300, 300, {kIrqLock}, kTimerFn + 0x20, kHardirq | kIrqsOff);
  }
  for (int i = 0; i < 3; ++i) {  // process context, irqs on
    rec.event(clean ? "_raw_spin_lock_irqsave" : "_raw_spin_lock", 300, 300, {kIrqLock}, kInProcess + 0x11);
    rec.event(clean ? "_raw_spin_unlock_irqrestore" : "_raw_spin_unlock", 300, 300, {kIrqLock}, kInProcess + 0x20,
              clean ? kIrqsOff : 0);
  }
  for (long round = 0; round < repeat; ++round) {
    const uint32_t ab = 301, ba = 302;
    if (round == 0) {
      rec.fork(ab, 2, ab, 2);
      rec.comm(ab, ab, "lockscope_ab");
      rec.fork(ba, 2, ba, 2);
      rec.comm(ba, ba, "lockscope_ba");
    }
    nest(rec, ab, "_raw_spin_lock", "_raw_spin_unlock", kSpinA, kSpinB, kSpinAThenB);
    nest(rec, ab, "mutex_lock", "mutex_unlock", kMutexA, kMutexB, kMutexAThenB);
    if (clean) {
      nest(rec, ba, "_raw_spin_lock", "_raw_spin_unlock", kSpinA, kSpinB, kSpinBThenA);
      nest(rec, ba, "mutex_lock", "mutex_unlock", kMutexA, kMutexB, kMutexBThenA);
    } else {
      nest(rec, ba, "_raw_spin_lock", "_raw_spin_unlock", kSpinB, kSpinA, kSpinBThenA);
      nest(rec, ba, "mutex_lock", "mutex_unlock", kMutexB, kMutexA, kMutexBThenA);
    }
  }
  ByteVector bytes = rec.bytes();
  std::ofstream data(out, std::ios::binary);
  data.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  std::ofstream kallsyms(out + ".kallsyms");
  kallsyms << kKallsyms;
  return data && kallsyms ? 0 : 1;
}
