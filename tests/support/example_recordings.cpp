#include "example_recordings.hpp"

namespace lockscope::testing {

ByteVector example_tracing_data() {
  return tracing_data({
      {"probe",
       {kprobe_format("_raw_spin_lock", kSpinLockId, {"__probe_ip", "lock"}),
        kprobe_format("_raw_spin_trylock__return", kTrylockReturnId, {"__probe_func", "__probe_ret_ip", "ret"})}},
      {"lock", {contention_begin_format(kBeginId), contention_end_format(kEndId)}},
  });
}

PerfDataBuilder example_lock_recording() {
  PerfDataBuilder builder;
  builder.set_tracing_data(example_tracing_data());
  builder.add_event(tracepoint_attr(kSpinLockId, kLockSampleType), "probe:_raw_spin_lock", {11, 12});
  builder.add_event(tracepoint_attr(kTrylockReturnId, kLockSampleType), "probe:_raw_spin_trylock__return", {13, 14});
  builder.add_event(tracepoint_attr(kBeginId, kLockSampleType), "lock:contention_begin", {15});
  builder.add_kernel_build_id("eb4fbcd0112233445566778899aabbccddeeff00");
  builder.kernel_mmap(0xffffffff81000000, 0x1000000, 0xffffffffae200000, {UINT32_MAX, 0, 0, 0});
  builder.comm(100, 100, "unshare", true, {100, 100, 1000, 0});
  builder.fork(100, 100, 101, 100, {100, 101, 1500, 1});

  SampleFields spin;
  spin.ip = 0xffffffff81a59b40;
  spin.pid = 100;
  spin.tid = 100;
  spin.time = 2000;
  spin.cpu = 1;
  spin.callchain = {kContextKernel, 0xffffffff81a59b40, 0xffffffff81123456, kContextUser, 0x401000};
  spin.raw = trace_payload(kSpinLockId, 0x08 | 0x01, 1, 100, {0xffffffff81a59b40, 0xffffffff83f84768});
  builder.sample(0, spin);

  SampleFields trylock = spin;
  trylock.time = 3000;
  trylock.tid = 101;
  trylock.raw = trace_payload(kTrylockReturnId, 0x10, 2, 101, {0xffffffff81a59b40, 0xffffffff81138240, 1});
  builder.sample(1, trylock);

  SampleFields begin = spin;
  begin.time = 4000;
  ByteWriter contention;
  contention.put_bytes(trace_payload(kBeginId, 0, 0, 100, {0xffffffff83008080}));
  contention.put<uint32_t>(1 | 4);
  begin.raw = contention.bytes;
  builder.sample(2, begin);
  builder.lost(11, 7, {0, 0, 4500, 0});
  builder.finished_round();
  return builder;
}

perf_event_attr every_sample_field_attr() {
  uint64_t all_fields = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
                        PERF_SAMPLE_ADDR | PERF_SAMPLE_ID | PERF_SAMPLE_STREAM_ID | PERF_SAMPLE_CPU |
                        PERF_SAMPLE_PERIOD | PERF_SAMPLE_READ | PERF_SAMPLE_CALLCHAIN | PERF_SAMPLE_RAW |
                        PERF_SAMPLE_BRANCH_STACK | PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER | PERF_SAMPLE_WEIGHT |
                        PERF_SAMPLE_DATA_SRC | PERF_SAMPLE_TRANSACTION | PERF_SAMPLE_REGS_INTR | PERF_SAMPLE_PHYS_ADDR |
                        PERF_SAMPLE_CGROUP | PERF_SAMPLE_DATA_PAGE_SIZE | PERF_SAMPLE_CODE_PAGE_SIZE | PERF_SAMPLE_AUX;
  perf_event_attr attr = tracepoint_attr(kSpinLockId, all_fields);
  attr.read_format = PERF_FORMAT_ID | PERF_FORMAT_LOST | PERF_FORMAT_GROUP | PERF_FORMAT_TOTAL_TIME_ENABLED;
  attr.branch_sample_type = PERF_SAMPLE_BRANCH_HW_INDEX;
  attr.sample_regs_user = 0b1011;  // three registers
  attr.sample_regs_intr = 0b11;    // two registers
  return attr;
}

SampleFields every_sample_field_sample() {
  SampleFields f;
  f.ip = 0x1111;
  f.pid = 7;
  f.tid = 8;
  f.time = 99;
  f.addr = 0xadd;
  f.stream_id = 0x5;
  f.cpu = 3;
  f.period = 42;
  f.read_values = {2, 1000, 10, 5, 0, 20, 6, 0};  // nr=2, time_enabled, {value,id,lost} x2
  f.callchain = {kContextKernel, 0xffffffff81000010};
  f.raw = trace_payload(kSpinLockId, 0, 0, 8, {0x1111, 0xffffffff82b27f58});
  f.branch_entries = {1, 2, 3, 4, 5, 6};
  f.regs_user = {2, 10, 11, 12};
  f.stack_user = ByteVector(24, std::byte{0x5a});
  f.regs_intr = {2, 20, 21};
  f.aux = ByteVector(16, std::byte{1});
  return f;
}

}  // namespace lockscope::testing
