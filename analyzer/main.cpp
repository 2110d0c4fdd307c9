// lockanalyze: reads perf.data recordings of kernel lock events. Every failure reaches here as a
// lockscope::Error and leaves as one line on stderr with a non-zero exit.
#include <cstdio>
#include <algorithm>
#include <exception>
#include <string>
#include <vector>

#include "commands.hpp"
#include "lockscope/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"lockanalyze: which processes take the same kernel locks, from a perf.data recording"};
  app.require_subcommand(1);
  lockscope::cli::add_events_command(app);
  lockscope::cli::add_symbolize_command(app);
  lockscope::cli::add_contention_command(app);
  lockscope::cli::add_report_command(app);
  // `lockanalyze perf.data --vmlinux vmlinux` means the report: a first argument that is neither
  // an option nor a subcommand is the recording.
  std::vector<std::string> arguments(argv + 1, argv + argc);
  if (!arguments.empty() && !arguments[0].starts_with("-") && arguments[0] != "-" &&
      app.get_subcommands([&](CLI::App* sub) { return sub->get_name() == arguments[0]; }).empty()) {
    arguments.insert(arguments.begin(), "report");
  } else if (!arguments.empty() && arguments[0] == "-") {
    arguments.insert(arguments.begin(), "report");
  }
  std::reverse(arguments.begin(), arguments.end());  // CLI11 takes them last-first
  try {
    app.parse(arguments);
  } catch (const CLI::ParseError& error) {
    return app.exit(error);
  } catch (const lockscope::Error& error) {
    std::fprintf(stderr, "lockanalyze: %s\n", error.what());
    return 1;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "lockanalyze: %s\n", error.what());
    return 1;
  }
  return 0;
}
