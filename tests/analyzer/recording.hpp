// An in-memory kprobe recording for the analyzer's scenario tests: the probes named as perf probe
// names them (group "probe"), samples with a kernel (and user) callchain and the kprobe payload.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "holder_model.hpp"
#include "lockscope/perf_data.hpp"
#include "perf_data_builder.hpp"
#include "sharing_report.hpp"

namespace lockscope::testing {

constexpr uint64_t kSampleType = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
                                 PERF_SAMPLE_CPU | PERF_SAMPLE_PERIOD | PERF_SAMPLE_CALLCHAIN | PERF_SAMPLE_RAW;
constexpr uint64_t kContextKernel = static_cast<uint64_t>(-128);
constexpr uint64_t kContextUser = static_cast<uint64_t>(-512);
// TRACE_FLAG_* bits of common_flags.
constexpr uint8_t kIrqsOff = 0x01, kHardirq = 0x08, kSoftirq = 0x10, kBhOff = 0x80;

// The probes of the shared Debian recording and the release probes of `lockrec --release`, named
// as perf probe names them.
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
    {"_raw_spin_lock_irqsave", 1008, {"__probe_ip", "lock"}},
    {"_raw_spin_unlock_irqrestore", 1009, {"__probe_ip", "lock"}},
    {"_raw_read_unlock", 1010, {"__probe_ip", "lock"}},
    {"_raw_write_unlock", 1011, {"__probe_ip", "lock"}},
    {"mutex_lock", 1012, {"__probe_ip", "lock"}},
    {"mutex_unlock", 1013, {"__probe_ip", "lock"}},
    {"down_read", 1014, {"__probe_ip", "lock"}},
    {"up_read", 1015, {"__probe_ip", "lock"}},
    {"_raw_spin_lock_bh", 1016, {"__probe_ip", "lock"}},
};

class Recording {
 public:
  // `group`: "probe" as plain `perf probe` names events, "lockrec" as lockrec does.
  explicit Recording(const std::string& group = "probe") {
    std::vector<std::string> formats;
    for (const auto& probe : kProbes) formats.push_back(kprobe_format(probe.event, probe.id, probe.fields));
    builder_.set_tracing_data(tracing_data({{group, formats}}));
    uint64_t id = 100;
    for (const auto& probe : kProbes) {
      builder_.add_event(tracepoint_attr(static_cast<uint64_t>(probe.id), kSampleType), group + ":" + probe.event,
                         {id++});
    }
  }

  void comm(uint32_t pid, uint32_t tid, const std::string& name, bool exec = false) {
    builder_.comm(pid, tid, name, exec, {pid, tid, ++time_, 0});
  }
  void fork(uint32_t pid, uint32_t ppid, uint32_t tid, uint32_t ptid) {
    builder_.fork(pid, ppid, tid, ptid, {pid, tid, ++time_, 0});
  }
  void exit(uint32_t pid, uint32_t tid) { builder_.exit(pid, pid, tid, tid, {pid, tid, ++time_, 0}); }

  // Lets time pass before the next record.
  void wait_ns(uint64_t ns) { time_ += ns; }
  // The CPU of the events that follow.
  void on_cpu(uint32_t cpu) { cpu_ = cpu; }
  // A LOST record: perf dropped events here.
  void lost() { builder_.lost(100, 1, {0, 0, ++time_, cpu_}); }

  // A lock event of `probe` by pid/tid; `caller` is the kernel frame after the lock function.
  void event(const std::string& probe, uint32_t pid, uint32_t tid, std::vector<uint64_t> values,
             uint64_t caller = 0xffffffff81100000, uint8_t flags = 0, bool user_frames = true) {
    size_t index = 0;
    while (kProbes[index].event != probe) ++index;
    SampleFields sample;
    sample.pid = pid;
    sample.tid = tid;
    sample.time = ++time_;
    sample.cpu = cpu_;
    sample.ip = 0xffffffff81a00001;
    sample.callchain = {kContextKernel, 0xffffffff81a00001, caller};
    if (user_frames) sample.callchain.insert(sample.callchain.end(), {kContextUser, 0x401000});
    std::vector<uint64_t> payload = {0xffffffff81a00000};
    if (probe.ends_with("__return")) payload.push_back(0xffffffff81100000);
    payload.insert(payload.end(), values.begin(), values.end());
    sample.raw = trace_payload(static_cast<uint16_t>(kProbes[index].id), flags, 1, static_cast<int32_t>(tid), payload);
    builder_.sample(index, sample);
  }

  model::HolderModel read(model::Options options = {}) {
    model::HolderModel model(options);
    LockEventFeed feed({&model});
    read_into(feed);
    feed.finish();
    return model;
  }

  // The recording as perf.data bytes (file mode).
  ByteVector bytes() {
    builder_.finished_round();
    return builder_.file_mode();
  }

  // Reads the recording, in time order, into any visitor.
  void read_into(perf::RecordVisitor& visitor) {
    std::string path = write_temp_file(bytes());
    reader_ = perf::PerfDataReader::open(path);
    reader_->read(visitor, perf::RecordOrder::time);
  }

  report::Report report(const model::HolderModel& model, const report::Filters& filters = {}) {
    namer_ = std::make_unique<report::Namer>(nullptr);
    return report::build_report(model, *reader_, filters, *namer_);
  }

 private:
  PerfDataBuilder builder_;
  uint64_t time_ = 1000;
  uint32_t cpu_ = 0;
  std::unique_ptr<perf::PerfDataReader> reader_;
  std::unique_ptr<report::Namer> namer_;
};

}  // namespace lockscope::testing
