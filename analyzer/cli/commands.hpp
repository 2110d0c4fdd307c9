// Each lockanalyze subcommand registers itself on the CLI11 app from its own file; main() only
// assembles them and turns lockscope::Error into one line on stderr.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "lockscope/perf_data.hpp"

namespace lockscope::cli {

// The exit status of `--strict` when the input is damaged (cut short, perf killed mid-write).
constexpr int kExitDamaged = 4;

// The recording a subcommand reads: FILE, or -i/--input FILE as in perf, else ./perf.data, where
// lockrec and perf record write by default.
inline void add_input_option(CLI::App* command, std::string& input, const std::string& what) {
  input = "perf.data";
  CLI::Option* positional = command->add_option("file", input, what + " (default: perf.data)");
  command->add_option("-i,--input", input, "the same, as perf's -i")->excludes(positional);
}

// A damaged recording is read up to the damage with a warning; scripts that must not take a
// partial answer ask for --strict.
inline void add_strict_option(CLI::App* command, bool& strict) {
  command->add_flag("--strict", strict,
                    "Exit with status 4 when the recording is damaged (cut short, perf killed "
                    "mid-write); by default what precedes the damage is used, with a warning");
}

// The reader's warnings on stderr, the damage first: each says where and what was lost.
inline void print_read_warnings(const perf::ReadStats& stats, const char* prefix = "lockanalyze: warning: ") {
  for (const auto& damage : stats.damage) std::fprintf(stderr, "%s%s\n", prefix, damage.c_str());
  for (const auto& warning : stats.warnings) std::fprintf(stderr, "%s%s\n", prefix, warning.c_str());
}

// Call once the output is written: --strict fails only after the partial answer is out.
inline void fail_if_damaged(const perf::ReadStats& stats, bool strict) {
  if (!strict || stats.damage.empty()) return;
  std::fprintf(stderr, "lockanalyze: --strict: the recording is damaged (%zu problem%s, above); exit %d\n",
               stats.damage.size(), stats.damage.size() == 1 ? "" : "s", kExitDamaged);
  throw CLI::RuntimeError(kExitDamaged);
}

void add_events_command(CLI::App& app);
void add_symbolize_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_contention_command(CLI::App& app);

}  // namespace lockscope::cli
