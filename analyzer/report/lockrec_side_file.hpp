// lockrec's FILE.lockrec.json, read back for the report: the mode and the probes a recording was
// made with, and the kernel's release and build-id, which perf.data lacks or may lack (the fields
// are in docs/recorder.md). The file lies next to a recording anyone may hand over, so it is read
// as hostile input: its size and nesting are bounded, every field the report uses is checked, and
// anything unexpected is one Error naming the file. Internal to analyzer/.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockscope::report {

// The newest format_version this analyzer reads (lockrec's metadata_format_version).
inline constexpr int64_t kLockrecFormatVersion = 1;

struct LockrecSkippedProbe {
  std::string function;
  std::string role;    // probe_table.hpp's name: "acquire", "release", "trylock-return", ...
  std::string reason;  // lockrec's words: "not in this kernel", "needs --release", ...
};

struct LockrecCommandStatus {
  std::string key;  // "exit_code" or "signal", the key lockrec wrote
  int64_t value = 0;
};

struct LockrecSideFile {
  std::string path;
  std::string mode;  // "kprobe" or "contention": what was recorded, after any fallback
  std::string kernel_release;
  std::string kernel_build_id;      // lowercase hex; empty when lockrec could not read it
  std::vector<std::string> probes;  // the kprobe events recorded, "lockrec:_raw_spin_lock"
  std::vector<LockrecSkippedProbe> skipped;
  std::vector<std::string> command;
  std::optional<LockrecCommandStatus> command_status;  // none: recorded with no COMMAND (lockrec -a, -p)
  // The size of the finished recording when lockrec wrote the file; absent from older lockrecs.
  std::optional<uint64_t> perf_data_bytes;
};

// FILE.lockrec.json for the recording FILE.
std::string lockrec_side_file_for(const std::string& recording);

// The side file beside `recording`, or nullopt when there is none. Throws an Error naming the
// file when it is there but cannot be read or is not what lockrec writes.
std::optional<LockrecSideFile> read_lockrec_side_file(const std::string& recording);

// The side file's content; `path` names it in errors and in the result.
LockrecSideFile parse_lockrec_side_file(std::string_view text, const std::string& path);

// Throws when the side file describes another kernel than the recording does: a side file left
// over from another recording would lend the report a wrong build-id and probe list. Facts that
// either side lacks (empty) are not compared.
void check_same_kernel(const LockrecSideFile& side, std::string_view os_release, std::string_view build_id_hex);

// Throws when the side file was written for a recording of another size: a side file left beside
// a recording that perf (or a copy) rewrote since. A side file without the size is not checked.
void check_same_recording(const LockrecSideFile& side, uint64_t recording_bytes);

// The report header's line: "recorded by lockrec in kprobe mode: 14 probes (not in this
// kernel: _raw_spin_lock_nested, ...)".
std::string describe(const LockrecSideFile& side);

}  // namespace lockscope::report
