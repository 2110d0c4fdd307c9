// libFuzzer target: the input is what `perf record -o -` writes, read as a stream (open_stream),
// so metadata arrives as records and trailing payloads (HEADER_TRACING_DATA) are read from it.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lockscope::fuzz::MemoryFile input(data, size);
  try {
    auto reader = lockscope::perf::PerfDataReader::open_stream(input.fd(), "fuzz-pipe");
    lockscope::fuzz::read_everything(*reader, size);
  } catch (const lockscope::Error&) {
    // Malformed input: one clear error is the right answer.
  }
  return 0;
}
