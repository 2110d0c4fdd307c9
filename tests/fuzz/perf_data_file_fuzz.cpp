// libFuzzer target: the input is a perf.data file, read in file mode (header, attrs, feature
// sections mapped; the data section through the record buffer) and decoded as the commands do.
// A pipe-mode stream saved to a file takes the pipe path from here too.
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  lockscope::fuzz::MemoryFile input(data, size);
  try {
    auto reader = lockscope::perf::PerfDataReader::open(input.path());
    lockscope::fuzz::read_everything(*reader, size);
  } catch (const lockscope::Error&) {
    // Malformed input: one clear error is the right answer.
  }
  return 0;
}
