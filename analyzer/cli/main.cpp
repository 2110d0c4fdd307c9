// lockanalyze: reads perf.data recordings of kernel lock events. Every failure reaches here as a
// lockscope::Error and leaves as one line on stderr with a non-zero exit.
//
// Exit status: 0 done; 1 the input or output failed (one line says what and where); 2 usage error
// (the options); 3 --fail-on-findings and lockdep's rules found something; 4 --strict and the
// recording is damaged (cut short, perf killed mid-write: what precedes the damage was used).
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "commands.hpp"
#include "lockscope/error.hpp"
#include "lockscope/version.hpp"

namespace {

constexpr int kExitError = 1;
constexpr int kExitUsage = 2;

bool is_help_or_version(const std::string& argument) {
  return argument == "-h" || argument == "--help" || argument == "--version";
}

int run(int argc, char** argv) {
  CLI::App app{"lockanalyze: which processes take the same kernel locks, from a perf.data recording"};
  app.require_subcommand(1);
  app.add_flag_callback(
      "--version",
      [] {
        std::printf("lockanalyze %s (git %s)\n", lockscope::version, lockscope::git_revision);
        throw CLI::Success();
      },
      "Print the version and the git revision, and exit");
  lockscope::cli::add_events_command(app);
  lockscope::cli::add_symbolize_command(app);
  lockscope::cli::add_contention_command(app);
  lockscope::cli::add_report_command(app);
  // `lockanalyze perf.data --vmlinux vmlinux` and plain `lockanalyze` (./perf.data) mean the
  // report: arguments that do not start with a subcommand are the report's.
  std::vector<std::string> arguments(argv + 1, argv + argc);
  bool starts_with_subcommand =
      !arguments.empty() &&
      !app.get_subcommands([&](CLI::App* sub) { return sub->get_name() == arguments[0]; }).empty();
  if (!starts_with_subcommand && (arguments.empty() || !is_help_or_version(arguments[0])))
    arguments.insert(arguments.begin(), "report");
  std::reverse(arguments.begin(), arguments.end());  // CLI11 takes them last-first
  try {
    app.parse(arguments);
  } catch (const CLI::ParseError& error) {
    // Help and --version end with status 0; --fail-on-findings throws its own status; any other
    // parse error is a usage error, one documented status whatever CLI11 calls it.
    int status = app.exit(error);
    bool usage_error = status != 0 && dynamic_cast<const CLI::RuntimeError*>(&error) == nullptr;
    return usage_error ? kExitUsage : status;
  } catch (const lockscope::Error& error) {
    std::fprintf(stderr, "lockanalyze: %s\n", error.what());
    return kExitError;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "lockanalyze: %s\n", error.what());
    return kExitError;
  }
  return 0;
}

}  // namespace

// What run() throws outside parsing (CLI11 refusing an option definition, memory running out)
// leaves the same way: one line, never std::terminate.
int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "lockanalyze: %s\n", error.what());
  } catch (...) {
    std::fprintf(stderr, "lockanalyze: an unknown exception\n");
  }
  return kExitError;
}
