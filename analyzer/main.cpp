// lockanalyze: reads perf.data recordings of kernel lock events. Every failure reaches here as a
// lockscope::Error and leaves as one line on stderr with a non-zero exit.
#include <cstdio>
#include <exception>

#include "commands.hpp"
#include "lockscope/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"lockanalyze: which processes take the same kernel locks, from a perf.data recording"};
  app.require_subcommand(1);
  lockscope::cli::add_events_command(app);
#ifdef LOCKSCOPE_HAVE_SYMBOLIZER
  lockscope::cli::add_symbolize_command(app);
  lockscope::cli::add_contention_command(app);
#endif
  try {
    app.parse(argc, argv);
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
