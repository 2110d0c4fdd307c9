// Each lockanalyze subcommand registers itself on the CLI11 app from its own file; main() only
// assembles them and turns lockscope::Error into one line on stderr.
#pragma once

#include <CLI/CLI.hpp>

namespace lockscope::cli {

void add_events_command(CLI::App& app);
void add_symbolize_command(CLI::App& app);
void add_report_command(CLI::App& app);
void add_contention_command(CLI::App& app);

}  // namespace lockscope::cli
