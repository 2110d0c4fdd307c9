#include "example_recordings.hpp"

namespace lockscope::testing {

ByteVector example_tracing_data() {
  return tracing_data({
      {"probe",
       {kprobe_format("_raw_spin_lock", kSpinLockId, {"__probe_ip", "lock"}),
        kprobe_format("_raw_spin_trylock__return", kTrylockReturnId,
                      {"__probe_func", "__probe_ret_ip", "ret"})}},
      {"lock", {contention_begin_format(kBeginId), contention_end_format(kEndId)}},
  });
}

PerfDataBuilder example_lock_recording() {
  PerfDataBuilder builder;
  builder.set_tracing_data(example_tracing_data());
  builder.add_event(tracepoint_attr(kSpinLockId, kLockSampleType), "probe:_raw_spin_lock", {11, 12});
  builder.add_event(tracepoint_attr(kTrylockReturnId, kLockSampleType),
                    "probe:_raw_spin_trylock__return", {13, 14});
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

}  // namespace lockscope::testing
