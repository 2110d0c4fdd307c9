// Writes small seed inputs for the fuzz targets from the in-memory builder, one directory per
// target: make_seeds OUT_DIR  ->  OUT_DIR/{perf_data_file,perf_data_pipe,trace_formats,
// compressed_records}/builder-*. Each seed is a few hundred bytes to a few KB, so the fuzzers run
// thousands of inputs a second (the real recordings tried first ran at 46 a second).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

#include "example_recordings.hpp"

using namespace lockscope::testing;

namespace {

void write_seed(const std::filesystem::path& dir, const std::string& name, const ByteVector& bytes) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + (dir / name).string());
}

// A recording with every sample field perf can write, so the fuzzer starts from each one.
PerfDataBuilder every_sample_field() {
  PerfDataBuilder builder;
  builder.set_tracing_data(example_tracing_data());
  builder.add_event(every_sample_field_attr(), "probe:_raw_spin_lock", {5});
  builder.sample(0, every_sample_field_sample());
  return builder;
}

// Samples found by PERF_SAMPLE_ID (no IDENTIFIER), two events, no sample_id_all.
PerfDataBuilder samples_by_id() {
  PerfDataBuilder builder;
  builder.set_tracing_data(example_tracing_data());
  uint64_t type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_ID | PERF_SAMPLE_RAW;
  perf_event_attr begin = tracepoint_attr(kBeginId, type);
  begin.sample_id_all = 0;
  perf_event_attr end = tracepoint_attr(kEndId, type);
  end.sample_id_all = 0;
  builder.add_event(begin, "lock:contention_begin", {21});
  builder.add_event(end, "lock:contention_end", {22});
  SampleFields f;
  f.ip = 0xffffffff81000000;
  f.raw = trace_payload(kBeginId, 0, 0, 9, {0xffffffff83008080});
  builder.sample(0, f);
  f.raw = trace_payload(kEndId, 0, 0, 9, {0xffffffff83008080, 0});
  builder.sample(1, f);
  return builder;
}

}  // namespace

int run_make_seeds(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_seeds OUT_DIR\n");
    return 2;
  }
  std::filesystem::path out(argv[1]);
  const std::filesystem::path file = out / "perf_data_file", pipe = out / "perf_data_pipe";
  const std::filesystem::path trace = out / "trace_formats", zstd = out / "compressed_records";

  PerfDataBuilder lock = example_lock_recording();
  write_seed(file, "builder-lock", lock.file_mode());
  write_seed(file, "builder-lock-zstd", lock.file_mode(true, 200));
  write_seed(file, "builder-lock-as-pipe", lock.pipe_mode());
  write_seed(file, "builder-every-field", every_sample_field().file_mode());
  write_seed(file, "builder-by-id", samples_by_id().file_mode());
  write_seed(pipe, "builder-lock", lock.pipe_mode());
  write_seed(pipe, "builder-lock-zstd", lock.pipe_mode(true, 200));
  write_seed(pipe, "builder-every-field", every_sample_field().pipe_mode());
  write_seed(pipe, "builder-by-id", samples_by_id().pipe_mode());
  write_seed(trace, "builder-lock", example_tracing_data());

  // The compressed-records target takes a control byte, then the records it compresses.
  for (uint8_t control : {uint8_t{0x03}, uint8_t{0x40 | 0x10}}) {
    ByteVector input(1 + lock.data().size());
    input[0] = std::byte{control};
    std::copy(lock.data().begin(), lock.data().end(), input.begin() + 1);
    write_seed(zstd, "builder-lock-" + std::to_string(control), input);
  }
  return 0;
}

// A failure is one line and status 1, not std::terminate.
int main(int argc, char** argv) {
  try {
    return run_make_seeds(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "make_seeds: %s\n", error.what());
  }
  return 1;
}
