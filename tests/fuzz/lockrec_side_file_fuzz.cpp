// libFuzzer target: the input is a FILE.lockrec.json side file, read the way the report reads it
// (parse_lockrec_side_file), then described and checked against a kernel as the report does.
#include <string>
#include <string_view>

#include "lockrec_side_file.hpp"
#include "lockscope/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto side = lockscope::report::parse_lockrec_side_file(text, "fuzz.lockrec.json");
    (void)lockscope::report::describe(side).size();
    lockscope::report::check_same_kernel(side, "6.1.0-56-amd64", "");
  } catch (const lockscope::Error&) {
    // Malformed input: one clear error is the right answer.
  }
  return 0;
}
