// Small recordings built in memory that several tests share: the reader's unit tests check them
// field by field, and the fuzz seed maker starts the fuzzers from them.
#pragma once

#include <linux/perf_event.h>
#include <cstdint>

#include "perf_data_builder.hpp"

namespace lockscope::testing {

// Trace event ids of the example formats (any value works; these are the ones of the shared
// recording's kernel, so the numbers look familiar).
constexpr int kSpinLockId = 1359, kTrylockReturnId = 1366, kBeginId = 200, kEndId = 201;
// What `perf record -e ... -g` asks for on a tracepoint.
constexpr uint64_t kLockSampleType = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
                                     PERF_SAMPLE_CPU | PERF_SAMPLE_PERIOD | PERF_SAMPLE_CALLCHAIN | PERF_SAMPLE_RAW;
constexpr uint64_t kContextKernel = static_cast<uint64_t>(-128);
constexpr uint64_t kContextUser = static_cast<uint64_t>(-512);

// Three lock events (a kprobe on _raw_spin_lock, a trylock return probe, lock:contention_begin),
// with the kernel map, a COMM, a FORK, a LOST record and a FINISHED_ROUND.
PerfDataBuilder example_lock_recording();

// The tracing data of example_lock_recording().
ByteVector example_tracing_data();

// An attr (of the _raw_spin_lock kprobe format) asking for every sample field perf can write: READ
// as a group with ids and lost counts, a branch stack with its hardware index, three user and two
// interrupt registers. And one sample's values for it, a lock event on 0xffffffff82b27f58.
perf_event_attr every_sample_field_attr();
SampleFields every_sample_field_sample();

}  // namespace lockscope::testing
