// Scenario tests of the holder model and the sharing report on recordings built in memory, each
// with a known answer.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>

#include "holder_model.hpp"
#include "lockscope/perf_data.hpp"
#include "perf_data_builder.hpp"
#include "recording.hpp"
#include "sharing_report.hpp"

using namespace lockscope;
using namespace lockscope::testing;

namespace {

constexpr uint64_t kLockA = 0xffffffff83f84768, kLockB = 0xffffffff83fd71cc;

std::vector<std::string> holder_labels(const report::LockEntry& lock) {
  std::vector<std::string> labels;
  for (const auto& holder : lock.holders) labels.push_back(holder.holder->label());
  return labels;
}

const report::LockEntry* find_lock(const report::Report& report, uint64_t address) {
  for (const auto& lock : report.locks) {
    if (lock.lock->address == address) return &lock;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("two processes sharing one lock, and a lock held by one process only") {
  Recording rec;
  rec.comm(10, 10, "alpha");
  rec.comm(20, 20, "beta");
  rec.event("_raw_spin_lock", 10, 10, {kLockA});
  rec.event("_raw_spin_lock", 10, 10, {kLockA});
  rec.event("_raw_spin_lock", 20, 20, {kLockA});
  rec.event("_raw_spin_lock", 20, 20, {kLockB});
  auto model = rec.read();
  auto report = rec.report(model);
  REQUIRE(report.locks.size() == 1);  // kLockB has one holder: below the default --min-holders 2
  CHECK(report.locks[0].lock->address == kLockA);
  CHECK(holder_labels(report.locks[0]) == std::vector<std::string>{"alpha[10]", "beta[20]"});
  CHECK(report.locks[0].acquisitions == 3);
  CHECK(report.locks[0].kind == "spinlock");
  REQUIRE(report.pairs.size() == 1);
  CHECK(report.pairs[0].shared_locks.size() == 1);
  REQUIRE(report.groups.size() == 1);
  CHECK(report.groups[0].holders.size() == 2);

  report::Filters everything;
  everything.min_holders = 1;
  auto full = rec.report(model, everything);
  REQUIRE(full.locks.size() == 2);
  const auto* b = find_lock(full, kLockB);
  REQUIRE(b);
  CHECK(holder_labels(*b) == std::vector<std::string>{"beta[20]"});
}

TEST_CASE("threads roll up into their process, and --by thread keeps them apart") {
  Recording rec;
  rec.comm(10, 10, "server");
  rec.fork(10, 10, 11, 10);  // a thread of 10
  rec.event("_raw_spin_lock", 10, 10, {kLockA});
  rec.event("_raw_spin_lock", 10, 11, {kLockA});
  auto by_process = rec.read();
  report::Filters one;
  one.min_holders = 1;
  auto report = rec.report(by_process, one);
  REQUIRE(report.locks.size() == 1);
  CHECK(holder_labels(report.locks[0]) == std::vector<std::string>{"server[10]"});
  CHECK(report.locks[0].holders[0].pair->acquisitions == 2);

  model::Options threads;
  threads.group_by = model::GroupBy::thread;
  auto by_thread = rec.read(threads);
  auto split = rec.report(by_thread);
  REQUIRE(split.locks.size() == 1);
  CHECK(holder_labels(split.locks[0]) == std::vector<std::string>{"server[10]", "server[11]"});
}

TEST_CASE("hardirq acquisitions go to the [hardirq] holder, noting whom they interrupted") {
  Recording rec;
  rec.comm(10, 10, "alpha");
  rec.comm(20, 20, "beta");
  rec.event("_raw_spin_lock", 10, 10, {kLockA}, 0xffffffff81100000, kHardirq | kIrqsOff);
  rec.event("_raw_spin_lock", 20, 20, {kLockA}, 0xffffffff81100000, kHardirq | kIrqsOff);
  rec.event("_raw_spin_lock", 20, 20, {kLockA});
  auto model = rec.read();
  auto report = rec.report(model);
  REQUIRE(report.locks.size() == 1);
  CHECK(holder_labels(report.locks[0]) == std::vector<std::string>{"[hardirq]", "beta[20]"});
  const auto& irq = report.locks[0].holders[0];
  CHECK(irq.pair->acquisitions == 2);
  CHECK(irq.pair->irqs_off_at_entry == 2);
  CHECK(irq.interrupted == std::vector<std::string>{"alpha[10]", "beta[20]"});

  model::Options as_task;
  as_task.irq_as_task = true;
  auto task_model = rec.read(as_task);  // the report points into the model: keep it alive
  auto task_view = rec.report(task_model);
  REQUIRE(task_view.locks.size() == 1);
  CHECK(holder_labels(task_view.locks[0]) == std::vector<std::string>{"beta[20]", "alpha[10]"});
}

TEST_CASE("a pid reused later in the recording is a new holder") {
  Recording rec;
  rec.fork(30, 1, 30, 1);
  rec.comm(30, 30, "worker");
  rec.event("_raw_spin_lock", 30, 30, {kLockA});
  rec.exit(30, 30);
  rec.fork(30, 1, 30, 1);  // pid 30 again
  rec.comm(30, 30, "worker");
  rec.event("_raw_spin_lock", 30, 30, {kLockA});
  auto model = rec.read();
  auto report = rec.report(model);
  REQUIRE(report.locks.size() == 1);
  REQUIRE(report.locks[0].holders.size() == 2);
  CHECK(report.locks[0].holders[0].holder->generation != report.locks[0].holders[1].holder->generation);
}

TEST_CASE("an exec rename makes the process a holder under its new name") {
  Recording rec;
  rec.comm(40, 40, "sh");
  rec.event("_raw_spin_lock", 40, 40, {kLockA});
  rec.comm(40, 40, "unshare", true);
  rec.event("_raw_spin_lock_irq", 40, 40, {kLockA});
  auto model = rec.read();
  auto report = rec.report(model);
  REQUIRE(report.locks.size() == 1);
  CHECK(holder_labels(report.locks[0]) == std::vector<std::string>{"sh[40]", "unshare[40]"});
  CHECK(model::flavour_names(report.locks[0].holders[1].pair->flavour_mask) == std::vector<std::string>{"irq"});
}

TEST_CASE("trylock entries pair with their return probe per thread") {
  Recording rec;
  rec.comm(10, 10, "alpha");
  rec.comm(20, 20, "beta");
  rec.event("_raw_spin_trylock", 10, 10, {kLockA});
  rec.event("_raw_spin_trylock", 20, 20, {kLockA});
  rec.event("_raw_spin_trylock__return", 20, 20, {0});  // beta failed
  rec.event("_raw_spin_trylock__return", 10, 10, {1});  // alpha took it
  rec.event("_raw_spin_trylock__return", 20, 20, {1});  // no entry before it
  auto model = rec.read();
  CHECK(model.stats().trylock_results_without_entry == 1);
  report::Filters one;
  one.min_holders = 1;
  auto report = rec.report(model, one);
  REQUIRE(report.locks.size() == 1);
  // Only alpha held the lock; beta's failed attempt is kept on its pair but is no hold.
  CHECK(holder_labels(report.locks[0]) == std::vector<std::string>{"alpha[10]"});
  CHECK(model::flavour_names(report.locks[0].holders[0].pair->flavour_mask) ==
        std::vector<std::string>{"trylock", "trylock-taken"});
  bool beta_failed = false;
  for (const auto& pair : model.pairs()) {
    if (model.holders()[pair.holder].pid == 20) beta_failed = pair.trylock_failed == 1 && pair.acquisitions == 0;
  }
  CHECK(beta_failed);
}

// The feed pairs a trylock's probes by context: an interrupt's samples carry the tid of the task
// they interrupted, and a trylock in the interrupt must not settle the task's pending one.
TEST_CASE("an interrupt's trylock does not settle the trylock of the task it interrupted") {
  Recording rec;
  rec.comm(10, 10, "alpha");
  rec.event("_raw_spin_trylock", 10, 10, {kLockA});
  rec.event("_raw_spin_trylock", 10, 10, {kLockB}, 0xffffffff81100000, kHardirq | kIrqsOff);
  rec.event("_raw_spin_trylock__return", 10, 10, {1}, 0xffffffff81100000, kHardirq | kIrqsOff);
  rec.event("_raw_spin_trylock__return", 10, 10, {1});
  auto model = rec.read();
  CHECK(model.stats().trylock_entries_without_result == 0);
  CHECK(model.stats().trylock_results_without_entry == 0);
  report::Filters one;
  one.min_holders = 1;
  auto report = rec.report(model, one);
  REQUIRE(report.locks.size() == 2);
  for (const auto& lock : report.locks) {
    REQUIRE(lock.holders.size() == 1);
    CHECK(model::flavour_names(lock.holders[0].pair->flavour_mask) ==
          std::vector<std::string>{"trylock", "trylock-taken"});
  }
}

TEST_CASE("lost events settle a pending trylock without a result") {
  Recording rec;
  rec.comm(10, 10, "alpha");
  rec.event("_raw_spin_trylock", 10, 10, {kLockA});
  rec.lost();
  rec.event("_raw_spin_trylock__return", 10, 10, {1});
  auto model = rec.read();
  // Whether the return that follows a loss belongs to the entry before it is unknown.
  CHECK(model.stats().trylock_entries_without_result == 1);
  CHECK(model.stats().trylock_results_without_entry == 1);
}

TEST_CASE("rwlock read and write are one lock with both kinds") {
  Recording rec;
  rec.comm(10, 10, "reader");
  rec.comm(20, 20, "writer");
  rec.event("_raw_read_lock", 10, 10, {kLockB});
  rec.event("_raw_write_lock", 20, 20, {kLockB});
  auto model = rec.read();
  auto report = rec.report(model);
  REQUIRE(report.locks.size() == 1);
  CHECK(report.locks[0].kind == "rwlock-read,rwlock-write");
  CHECK(model::access_name(static_cast<model::Access>(
            std::countr_zero(report.locks[0].holders[0].pair->access_mask))) == "rwlock-read");
}

TEST_CASE("filters: pid, comm, idle, kernel threads, lock") {
  Recording rec;
  rec.comm(0, 0, "swapper");
  rec.comm(10, 10, "alpha");
  rec.fork(50, 2, 50, 2);  // a kernel thread, forked by kthreadd
  rec.comm(50, 50, "kworker/0:1");
  for (uint32_t pid : {0u, 10u, 50u}) {
    rec.event("_raw_spin_lock", pid, pid, {kLockA}, 0xffffffff81100000, 0, pid == 10);
  }
  auto model = rec.read();
  auto labels_with = [&](report::Filters filters) {
    filters.min_holders = 1;
    auto report = rec.report(model, filters);
    return report.locks.empty() ? std::vector<std::string>{} : holder_labels(report.locks[0]);
  };
  report::Filters idle;
  idle.exclude_idle = true;
  CHECK(labels_with(idle).size() == 2);
  report::Filters no_kthreads;
  no_kthreads.kernel_threads = false;
  CHECK(labels_with(no_kthreads) == std::vector<std::string>{"alpha[10]"});
  report::Filters only_kthreads;
  only_kthreads.kernel_threads = true;
  CHECK(labels_with(only_kthreads) == std::vector<std::string>{"swapper[0]", "kworker/0:1[50]"});
  report::Filters by_comm;
  by_comm.comms = {"alpha"};
  CHECK(labels_with(by_comm) == std::vector<std::string>{"alpha[10]"});
  report::Filters by_pid;
  by_pid.pids = {50};
  CHECK(labels_with(by_pid) == std::vector<std::string>{"kworker/0:1[50]"});
  report::Filters by_lock;
  by_lock.locks = {"0xffffffff83fd71cc"};
  CHECK(labels_with(by_lock).empty());
}

TEST_CASE("identical stacks are stored once, and --stacks keeps more distinct ones") {
  Recording rec;
  rec.comm(10, 10, "alpha");
  for (int i = 0; i < 50; ++i) rec.event("_raw_spin_lock", 10, 10, {kLockA}, 0xffffffff81100000);
  rec.event("_raw_spin_lock", 10, 10, {kLockA}, 0xffffffff81200000);
  auto one = rec.read();
  CHECK(one.stacks().size() == 1);
  REQUIRE(one.pairs().size() == 1);
  CHECK(one.pairs()[0].stacks.size() == 1);
  model::Options three;
  three.stacks_per_pair = 3;
  auto more = rec.read(three);
  CHECK(more.pairs()[0].stacks.size() == 2);
  CHECK(more.stacks().size() == 2);
}

TEST_CASE("a lock held by very many holders stays out of the pairs, with a note") {
  // Its pairs would be quadratic in memory (60,000 holders of one lock once took 22 GB).
  Recording rec;
  const int holders = static_cast<int>(report::kMaxHoldersForPairs) + 1;
  for (int pid = 100; pid < 100 + holders; ++pid) {
    rec.comm(pid, pid, "worker");
    rec.event("_raw_spin_lock", pid, pid, {kLockA});
  }
  rec.event("_raw_spin_lock", 100, 100, {kLockB});
  rec.event("_raw_spin_lock", 101, 101, {kLockB});
  auto model = rec.read();
  auto report = rec.report(model);
  REQUIRE(report.locks.size() == 2);
  CHECK(report.locks[0].holders.size() == static_cast<size_t>(holders));
  REQUIRE(report.pairs.size() == 1);  // only the two holders of kLockB
  CHECK(report.pairs[0].shared_locks.size() == 1);
  const auto& notes = report.header.notes;
  CHECK(std::count_if(notes.begin(), notes.end(), [](const std::string& note) {
          return note.find("left out of the pairs of holders") != std::string::npos;
        }) == 1);
  REQUIRE(report.groups.size() == 1);  // the groups still see every holder
  CHECK(report.groups[0].holders.size() == static_cast<size_t>(holders));
}
