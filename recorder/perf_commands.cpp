// The perf command lines lockrec runs, built as argv vectors (perf is never run through a shell),
// and the checks made before any of them runs.
#include <lockscope/recorder.hpp>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace lockscope::recorder {

std::vector<std::string> probe_add_command(const Options& options, const ProbePlan& plan) {
  // --no-inlines: with DWARF, perf probe would also put the probe on inlined copies of the function
  // (measured on Debian 6.1: mutex_lock's inlined copies at static-call sites, which the kernel
  // refuses with "Failed to write event: Invalid argument"); only the function entry is wanted.
  std::vector<std::string> argv = {options.perf, "probe", "--quiet", "--no-inlines"};
  if (!options.vmlinux.empty()) {
    argv.push_back("--vmlinux");
    argv.push_back(options.vmlinux.string());
  }
  for (const auto& probe : plan.chosen) {
    argv.push_back("--add");
    argv.push_back(probe.definition);
  }
  return argv;
}

std::vector<std::string> probe_delete_command(const Options& options) {
  return {options.perf, "probe", "--quiet", "--del", std::string(probe_group) + ":*"};
}

std::vector<std::string> record_command(const Options& options, const std::vector<std::string>& events) {
  std::vector<std::string> argv = {options.perf, "record", "-o", options.output.string()};
  if (options.pid) {
    argv.push_back("--pid");
    argv.push_back(std::to_string(*options.pid));
  } else {
    argv.push_back("--all-cpus");
  }
  argv.push_back("--call-graph");
  argv.push_back(options.call_graph);
  if (options.sample_every) {
    // Tracepoints and kprobes sample every hit while PERF_SAMPLE_PERIOD is in sample_type, whatever
    // -c says (the kernel's perf_swevent_event): --no-period leaves it out, so one in N is kept.
    argv.push_back("-c");
    argv.push_back(std::to_string(*options.sample_every));
    argv.push_back("--no-period");
  }
  if (!options.max_size.empty()) argv.push_back("--max-size=" + options.max_size);
  if (options.compress) argv.push_back("-z");
  // Start disabled and let lockrec enable the events through the control fd: the ack tells lockrec
  // that recording is on, so COMMAND starts only once its lock events can be seen.
  argv.push_back("--delay=-1");
  argv.push_back("--control=fd:" + std::to_string(perf_control_fd) + "," + std::to_string(perf_ack_fd));
  for (const auto& event : events) {
    argv.push_back("-e");
    argv.push_back(event);
    // perf applies -G to the event just before it, so each event gets its own.
    if (!options.cgroup.empty()) {
      argv.push_back("-G");
      argv.push_back(options.cgroup);
    }
  }
  return argv;
}

std::string shell_quote(const std::vector<std::string>& argv) {
  std::string line;
  for (const auto& word : argv) {
    if (!line.empty()) line += ' ';
    bool plain = !word.empty() && word.find_first_not_of(
                                      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                      "0123456789_-./=,:%+@") == std::string::npos;
    if (plain) {
      line += word;
      continue;
    }
    line += '\'';
    for (char c : word) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += '\'';
  }
  return line;
}

Mode resolve_mode(const KernelView& kernel, Mode requested) {
  if (requested != Mode::automatic) return requested;
  return kernel.has_kprobe_events() ? Mode::kprobe : Mode::contention;
}

namespace {
// Indexed by Mode.
constexpr std::array<std::string_view, 3> mode_names = {"auto", "kprobe", "contention"};
}  // namespace

std::string_view name_of(Mode mode) { return mode_names[static_cast<size_t>(mode)]; }

std::optional<Mode> mode_named(std::string_view name) {
  auto match = std::find(mode_names.begin(), mode_names.end(), name);
  if (match == mode_names.end()) return std::nullopt;
  return static_cast<Mode>(match - mode_names.begin());
}

std::vector<std::string> contention_events() {
  return {probes::contention_tracepoints.begin(), probes::contention_tracepoints.end()};
}

std::vector<std::string> kprobe_only_options(const Options& options) {
  std::vector<std::string> given;
  if (options.release) given.push_back("--release");
  if (options.trylock_result) given.push_back("--trylock-result");
  if (!options.vmlinux.empty()) given.push_back("--vmlinux");
  return given;
}

std::vector<std::string> preflight_problems(const KernelView& kernel, const Options& options, const PerfFacts& perf,
                                            bool privileged) {
  std::vector<std::string> problems;
  if (!perf.runs)
    problems.push_back("perf does not run (" + perf.version_line +
                       "); install the perf matching the kernel (Debian: apt-get install linux-perf)");
  if (!privileged) {
    problems.push_back("recording needs root, or CAP_PERFMON and CAP_SYS_ADMIN; run lockrec with sudo");
    if (auto paranoid = kernel.perf_event_paranoid(); paranoid && *paranoid > -1)
      problems.push_back("kernel.perf_event_paranoid is " + std::to_string(*paranoid) +
                         ": system-wide tracing without root needs sysctl kernel.perf_event_paranoid=-1");
  }
  // perf would fail there only after moving nothing, but with a message about its session.
  std::filesystem::path directory = options.output.parent_path().empty() ? "." : options.output.parent_path();
  if (std::filesystem::is_directory(directory) && access(directory.c_str(), W_OK) != 0)
    problems.push_back("cannot write " + options.output.string() + " (" + std::strerror(errno) + " in " +
                       directory.string() + "); give -o a path in a directory you can write");
  auto kernel_side = kernel_problems(kernel, options);
  problems.insert(problems.end(), kernel_side.begin(), kernel_side.end());
  return problems;
}

std::vector<std::string> kernel_problems(const KernelView& kernel, const Options& options) {
  std::vector<std::string> problems;
  if (!kernel.tracefs()) {
    problems.push_back(
        "tracefs is not mounted; mount it (lockrec as root mounts it itself): "
        "mount -t tracefs nodev /sys/kernel/tracing");
    return problems;  // every check below looks inside tracefs
  }
  if (access(kernel.tracefs()->c_str(), R_OK | X_OK) != 0) {
    problems.push_back("cannot read tracefs at " + kernel.tracefs()->string() + " (" + std::strerror(errno) +
                       "); run lockrec as root");
    return problems;
  }
  bool kprobes = kernel.has_kprobe_events();
  bool contention = kernel.has_contention_tracepoints();
  if (options.mode == Mode::kprobe && !kprobes)
    problems.push_back("this kernel has no kprobe_events (CONFIG_KPROBE_EVENTS is off); use --mode contention");
  if (options.mode == Mode::contention && !contention)
    problems.push_back("this kernel has no lock:contention_begin tracepoint (Linux 5.19 added it); use --mode kprobe");
  if (options.mode == Mode::automatic && !kprobes && !contention)
    problems.push_back(
        "this kernel has neither kprobe_events nor the lock:contention_begin tracepoint; "
        "lockrec needs CONFIG_KPROBE_EVENTS or Linux 5.19+");
  return problems;
}

}  // namespace lockscope::recorder
