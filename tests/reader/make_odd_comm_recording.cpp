// Writes a small perf.data of lock:contention_begin/end events from threads whose comms CSV and
// JSON must quote or escape (a comma, a double quote, a backslash, a space), and from one whose
// comm is plain, interleaved and renamed midway, so that `lockanalyze events` writes each kind of
// name on consecutive and alternating rows. perf script reads it as the oracle (see
// odd_comm_test.sh).
//
// usage: make_odd_comm_recording OUT
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "perf_data_builder.hpp"

namespace {

using namespace lockscope::testing;

using namespace lockscope::testing::contention_layout;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT\n", argv[0]);
    return 2;
  }
  PerfDataBuilder builder;
  builder.set_tracing_data(
      tracing_data({{"lock", {contention_begin_format(kBeginId), contention_end_format(kEndId)}}}));
  size_t begin_event = builder.add_event(tracepoint_attr(kBeginId, kSampleType), "lock:contention_begin", {1});
  size_t end_event = builder.add_event(tracepoint_attr(kEndId, kSampleType), "lock:contention_end", {2});

  const std::vector<std::string> comms = {"a,b", "say \"hi\"", "back\\slash", "two words", "plain"};
  uint64_t time = 1000;
  auto event = [&](bool begin, uint32_t tid) {
    SampleFields sample;
    sample.ip = 0xffffffff81000100;
    sample.pid = sample.tid = tid;
    sample.time = time += 100;
    sample.cpu = tid % 2;
    sample.callchain = {kContextKernel, 0xffffffff81000100, 0xffffffff81000200};
    ByteWriter raw;
    raw.put_bytes(trace_payload(begin ? kBeginId : kEndId, 0, 0, static_cast<int32_t>(tid), {0xffff888100000a00}));
    raw.put<uint32_t>(begin ? 1 : 0);  // begin: flags; end: ret
    sample.raw = raw.bytes;
    builder.sample(begin ? begin_event : end_event, sample);
  };
  for (uint32_t i = 0; i < comms.size(); ++i) {
    builder.comm(100 + i, 100 + i, comms[i], true, {100 + i, 100 + i, time += 10, 0});
  }
  for (int round = 0; round < 2; ++round) {
    // Each thread twice in a row, then all of them alternating.
    for (uint32_t i = 0; i < comms.size(); ++i) {
      event(true, 100 + i);
      event(false, 100 + i);
    }
    for (uint32_t i = 0; i < comms.size(); ++i) event(true, 100 + i);
    builder.finished_round();
    // The plain thread takes an odd name, the odd ones plain names, for the second round.
    for (uint32_t i = 0; i < comms.size(); ++i) {
      std::string renamed = i + 1 == comms.size() ? "now, \"odd\"" : "renamed" + std::to_string(i);
      builder.comm(100 + i, 100 + i, renamed, false, {100 + i, 100 + i, time += 10, 0});
    }
    // The last row's thread again, right after its rename: its new name, not the remembered one.
    event(false, 100 + static_cast<uint32_t>(comms.size()) - 1);
  }
  builder.finished_round();

  const ByteVector bytes = builder.file_mode();
  std::ofstream out(argv[1], std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return out ? 0 : 1;
}
