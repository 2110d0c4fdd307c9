// `lockanalyze symbolize` without the rest of lockanalyze, so the command can be tested in a tree that
// does not have the perf.data reader. --perf-data is the one option it cannot serve: its
// read_kernel_image_info (below) refuses, saying so, unless the real reader is linked instead.
#include <iostream>

#include "commands.hpp"
#include "lockscope/error.hpp"
#include "lockscope/perf_data.hpp"

#ifndef LOCKSCOPE_TEST_HAS_READER
namespace lockscope::perf {
KernelImageInfo read_kernel_image_info(const std::string& path) {
  throw Error("this test binary has no perf.data reader").file(path).hint("use lockanalyze");
}
}  // namespace lockscope::perf
#endif

int main(int argc, char** argv) {
  CLI::App app{"lockscope symbolize (test driver)"};
  app.require_subcommand(1);
  lockscope::cli::add_symbolize_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const lockscope::Error& e) {
    std::cerr << "lockanalyze: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
