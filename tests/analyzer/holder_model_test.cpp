// Scenario tests of the holder model and the sharing report on recordings built in memory, each
// with a known answer.
#include <catch2/catch.hpp>

#include <bit>

#include "holder_model.hpp"
#include "lockscope/perf_data.hpp"
#include "perf_data_builder.hpp"
#include "sharing_report.hpp"

using namespace lockscope;
using namespace lockscope::testing;

namespace {

constexpr uint64_t kSampleType = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID |
                                 PERF_SAMPLE_TIME | PERF_SAMPLE_CPU | PERF_SAMPLE_PERIOD |
                                 PERF_SAMPLE_CALLCHAIN | PERF_SAMPLE_RAW;
constexpr uint64_t kContextKernel = static_cast<uint64_t>(-128);
constexpr uint64_t kContextUser = static_cast<uint64_t>(-512);
constexpr uint8_t kIrqsOff = 0x01, kHardirq = 0x08;

// The probes of the shared Debian recording, named as perf probe names them.
struct Probe {
  std::string event;
  int id;
  std::vector<std::string> fields;
};
const std::vector<Probe> kProbes = {
    {"_raw_spin_lock", 1001, {"__probe_ip", "lock"}},
    {"_raw_spin_lock_irq", 1002, {"__probe_ip", "lock"}},
    {"_raw_read_lock", 1003, {"__probe_ip", "lock"}},
    {"_raw_write_lock", 1004, {"__probe_ip", "lock"}},
    {"_raw_spin_trylock", 1005, {"__probe_ip", "lock"}},
    {"_raw_spin_trylock__return", 1006, {"__probe_func", "__probe_ret_ip", "ret"}},
    {"_raw_spin_unlock", 1007, {"__probe_ip", "lock"}},
};

class Recording {
 public:
  Recording() {
    std::vector<std::string> formats;
    for (const auto& probe : kProbes) formats.push_back(kprobe_format(probe.event, probe.id, probe.fields));
    builder_.set_tracing_data(tracing_data({{"probe", formats}}));
    uint64_t id = 100;
    for (const auto& probe : kProbes) {
      builder_.add_event(tracepoint_attr(static_cast<uint64_t>(probe.id), kSampleType),
                         "probe:" + probe.event, {id++});
    }
  }

  void comm(uint32_t pid, uint32_t tid, const std::string& name, bool exec = false) {
    builder_.comm(pid, tid, name, exec, {pid, tid, ++time_, 0});
  }
  void fork(uint32_t pid, uint32_t ppid, uint32_t tid, uint32_t ptid) {
    builder_.fork(pid, ppid, tid, ptid, {pid, tid, ++time_, 0});
  }
  void exit(uint32_t pid, uint32_t tid) { builder_.exit(pid, pid, tid, tid, {pid, tid, ++time_, 0}); }

  // A lock event of `probe` by pid/tid; `caller` is the kernel frame after the lock function.
  void event(const std::string& probe, uint32_t pid, uint32_t tid, std::vector<uint64_t> values,
             uint64_t caller = 0xffffffff81100000, uint8_t flags = 0, bool user_frames = true) {
    size_t index = 0;
    while (kProbes[index].event != probe) ++index;
    SampleFields sample;
    sample.pid = pid;
    sample.tid = tid;
    sample.time = ++time_;
    sample.ip = 0xffffffff81a00001;
    sample.callchain = {kContextKernel, 0xffffffff81a00001, caller};
    if (user_frames) sample.callchain.insert(sample.callchain.end(), {kContextUser, 0x401000});
    std::vector<uint64_t> payload = {0xffffffff81a00000};
    if (probe.ends_with("__return")) payload.push_back(0xffffffff81100000);
    payload.insert(payload.end(), values.begin(), values.end());
    sample.raw = trace_payload(static_cast<uint16_t>(kProbes[index].id), flags, 1,
                               static_cast<int32_t>(tid), payload);
    builder_.sample(index, sample);
  }

  model::HolderModel read(model::Options options = {}) {
    builder_.finished_round();
    std::string path = write_temp_file(builder_.file_mode());
    reader_ = perf::PerfDataReader::open(path);
    model::HolderModel model(options);
    reader_->read(model, perf::RecordOrder::time);
    model.finish();
    return model;
  }

  report::Report report(const model::HolderModel& model, report::Filters filters = {}) {
    namer_ = std::make_unique<report::Namer>(nullptr);
    return report::build_report(model, *reader_, filters, *namer_);
  }

 private:
  PerfDataBuilder builder_;
  uint64_t time_ = 1000;
  std::unique_ptr<perf::PerfDataReader> reader_;
  std::unique_ptr<report::Namer> namer_;
};

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
  CHECK(model::flavour_names(report.locks[0].holders[1].pair->flavour_mask) ==
        std::vector<std::string>{"irq"});
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
