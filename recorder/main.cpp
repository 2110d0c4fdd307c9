// lockrec: records which kernel locks processes take, system-wide, while a command runs.
#include <lockscope/recorder.hpp>
#include <lockscope/version.hpp>

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <string_view>

namespace {

using lockscope::recorder::Options;

void define_options(CLI::App& app, Options& options, std::string& mode_name) {
  app.add_option("-o,--output", options.output,
                 "perf.data file to write (default perf.data); "
                 "FILE.kallsyms and FILE.lockrec.json are written beside it");
  auto* pid = app.add_option("-p,--pid", options.pid,
                             "record only this process instead of the whole system; without COMMAND, until it "
                             "ends or Ctrl-C")
                  ->check(CLI::Validator(
                      [](std::string& value) {
                        return value.find_first_not_of("0123456789") == std::string::npos && !value.empty() &&
                                       value.size() < 10 && std::stoi(value) > 0
                                   ? std::string()
                                   : "expected a process id (a number from 1)";
                      },
                      "PID"));
  app.add_flag("-a,--all-cpus", options.all_cpus,
               "record system-wide with no COMMAND, until Ctrl-C or SIGTERM (as perf record -a)")
      ->excludes(pid);
  app.add_option("--cgroup", options.cgroup, "record only tasks in this cgroup (perf record -G; system-wide only)")
      ->excludes(pid);
  app.add_option("--call-graph", options.call_graph, "how perf unwinds user stacks: fp (default), dwarf or lbr")
      ->check(CLI::IsMember({"fp", "dwarf", "lbr"}));
  app.add_option("--sample-every", options.sample_every, "keep one event in N (perf record -c N); default every one")
      ->check(CLI::Validator(
          [](std::string& value) {
            return value.find_first_not_of("0123456789") == std::string::npos && !value.empty() &&
                           value.find_first_not_of('0') != std::string::npos && value.size() <= 19
                       ? std::string()
                       : "expected a whole number from 1";
          },
          "N"));
  app.add_option("--max-size", options.max_size,
                 "stop recording at this size, e.g. 500M (perf record --max-size); "
                 "lockrec then stops COMMAND and exits 125")
      ->check(CLI::Validator(
          [](std::string& value) {
            // perf's own units (parse_tag_value): bytes, or B, K, M or G after the number.
            size_t digits = value.find_first_not_of("0123456789");
            bool well_formed =
                digits != 0 && value.size() <= 19 &&
                (digits == std::string::npos ||
                 (digits == value.size() - 1 && std::string_view("BKMG").find(value.back()) != std::string_view::npos));
            return well_formed ? std::string() : "expected a size such as 500M: a number, then B, K, M or G";
          },
          "SIZE"));
  app.add_flag("-z,--compress", options.compress, "compress the recording with zstd (perf record -z)");
  app.add_option("--mode", mode_name,
                 "kprobe: probe the lock functions (every acquisition); contention: the lock:contention_* "
                 "tracepoints (only contended acquisitions); auto (default): kprobe where the kernel has "
                 "kprobes and the probes can be added, else contention")
      ->check(CLI::IsMember({"auto", "kprobe", "contention"}));
  app.add_flag("--release", options.release, "also probe the unlock functions (kprobe mode)");
  app.add_flag("--trylock-result", options.trylock_result,
               "also put return probes on the trylock functions to see whether they took the lock "
               "(kprobe mode; opt-in because return probes on lock functions are risky)");
  app.add_option("--vmlinux", options.vmlinux,
                 "vmlinux with DWARF: fetch the lock by its parameter name instead of the argument register "
                 "(kprobe mode)")
      ->check(CLI::ExistingFile);
  auto* dry_run =
      app.add_flag("--dry-run", options.dry_run, "print the perf commands lockrec would run, in order, and stop");
  app.add_flag("--cleanup", options.cleanup, "remove lockrec probes left by a lockrec that was killed, and stop")
      ->excludes(dry_run);
  app.add_option("--perf", options.perf, "the perf program to run (default: perf from PATH)");
  // For the tests: read /proc and /sys under this directory instead of /.
  app.add_option("--system-root", options.system_root)->group("");
  app.add_option("command", options.command, "the command to run while recording, after --");
}

int run_lockrec(int argc, char** argv) {
  CLI::App app(
      "lockrec [OPTIONS] -- COMMAND [ARGS...]\n"
      "Records the kernel locks every process takes, system-wide, while COMMAND runs.\n"
      "Exits with COMMAND's status; 125 if lockrec or perf failed, 126/127 if COMMAND could not run.",
      "lockrec");
  Options options;
  std::string mode_name = "auto";
  define_options(app, options, mode_name);
  app.add_flag_callback(
      "--version",
      [] {
        std::cout << "lockrec " << lockscope::version << " (git " << lockscope::git_revision << ")\n";
        throw CLI::Success();
      },
      "Print the version and the git revision, and exit");
  try {
    app.parse(argc, argv);
    options.mode = *lockscope::recorder::mode_named(mode_name);  // IsMember checked the name
    if (options.command.empty() && !options.cleanup && !options.dry_run && !options.all_cpus && !options.pid)
      throw CLI::ValidationError("COMMAND",
                                 "give the command to record after --, e.g. lockrec -- sleep 5, "
                                 "or -a to record system-wide until Ctrl-C");
  } catch (const CLI::ParseError& error) {
    int status = app.exit(error);
    return status == 0 ? 0 : lockscope::recorder::kExitLockrecFailed;
  }
  return lockscope::recorder::run(options);
}

}  // namespace

// Every failure leaves as one line on stderr and status 125: what the recorder throws, and what
// setting up the command line throws (CLI11 refusing an option definition, memory running out).
int main(int argc, char** argv) {
  try {
    return run_lockrec(argc, argv);
  } catch (const std::exception& error) {
    std::cerr << "lockrec: " << error.what() << std::endl;
  } catch (...) {
    std::cerr << "lockrec: an unknown exception" << std::endl;
  }
  return lockscope::recorder::kExitLockrecFailed;
}
