// Each lockanalyze subcommand registers itself on the CLI11 app from its own file; main() only
// assembles them and turns lockscope::Error into one line on stderr.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace lockscope::cli {

// The recording a subcommand reads: FILE, or -i/--input FILE as in perf, else ./perf.data, where
// lockrec and perf record write by default.
inline void add_input_option(CLI::App* command, std::string& input, const std::string& what) {
  input = "perf.data";
  CLI::Option* positional = command->add_option("file", input, what + " (default: perf.data)");
  command->add_option("-i,--input", input, "the same, as perf's -i")->excludes(positional);
}

void add_events_command(CLI::App& app);
void add_symbolize_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_contention_command(CLI::App& app);

}  // namespace lockscope::cli
