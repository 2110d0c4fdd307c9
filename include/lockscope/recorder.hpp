// lockrec's pieces, split so the parts that decide (which probes, which perf command lines) can be
// tested against fake /proc and tracefs trees, apart from the part that runs perf.
#pragma once

#include <lockscope/probe_table.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace lockscope::recorder {

// All of lockrec's kprobes live in this group, so removing them never touches anyone else's probes.
inline constexpr std::string_view probe_group = "lockrec";

enum class Mode { automatic, kprobe, contention };

struct Options {
  std::filesystem::path output = "perf.data";
  std::optional<int> pid;
  bool all_cpus = false;  // -a: no COMMAND, system-wide until Ctrl-C (or SIGTERM)
  std::string cgroup;
  std::string call_graph = "fp";
  std::optional<uint64_t> sample_every;
  std::string max_size;
  bool compress = false;
  Mode mode = Mode::automatic;
  bool release = false;
  bool trylock_result = false;
  bool dry_run = false;
  bool cleanup = false;
  std::filesystem::path vmlinux;            // empty: fetch the lock from the argument register
  std::filesystem::path system_root = "/";  // where /proc and /sys are; tests point it at fixtures
  std::string perf = "perf";
  std::vector<std::string> command;
};

struct LoadedModule {
  std::string name;
  std::string base_address;  // as /proc/modules prints it, e.g. 0xffffffffc0a1b000
  uint64_t size = 0;
  std::map<std::string, std::string> sections;  // /sys/module/NAME/sections: name -> address
};

// The running kernel as lockrec sees it, read under a root directory so tests can use fake trees.
class KernelView {
 public:
  explicit KernelView(std::filesystem::path root);

  std::filesystem::path path(std::string_view absolute) const;  // "/proc/kallsyms" under the root
  std::string read(std::string_view absolute) const;            // that file's whole content
  // The mounted tracefs (/sys/kernel/tracing, else /sys/kernel/debug/tracing), if any.
  std::optional<std::filesystem::path> tracefs() const;
  bool has_kprobe_events() const;
  bool has_contention_tracepoints() const;
  std::string machine() const;  // /proc/sys/kernel/arch, e.g. x86_64, aarch64
  std::string release() const;  // /proc/sys/kernel/osrelease
  // Names of the core kernel's text symbols (modules left out): the functions a kprobe can target.
  std::set<std::string, std::less<>> kernel_functions() const;
  // Functions the kernel refuses to kprobe (debugfs kprobes/blacklist); empty if unreadable.
  std::set<std::string, std::less<>> kprobe_blacklist() const;
  // "group:event" of every kprobe event of `group` currently defined (tracefs kprobe_events).
  std::vector<std::string> probe_events_in_group(std::string_view group) const;
  // The GNU build-id note of the running kernel (/sys/kernel/notes), as lowercase hex.
  std::optional<std::string> build_id() const;
  std::vector<LoadedModule> modules() const;
  std::optional<int> perf_event_paranoid() const;

 private:
  std::filesystem::path root_;
};

// Parses the GNU build-id out of an ELF note section's raw bytes (what /sys/kernel/notes holds).
std::optional<std::string> build_id_from_notes(std::string_view notes);

struct ChosenProbe {
  const probes::ProbeRow* row;
  std::string event;       // group:event as perf record takes it
  std::string definition;  // the perf probe -a argument
};

struct SkippedProbe {
  const probes::ProbeRow* row;
  std::string reason;
};

struct ProbePlan {
  std::vector<ChosenProbe> chosen;
  std::vector<SkippedProbe> skipped;

  std::vector<std::string> events() const;  // the chosen probes' events, for perf record -e
};

// Which rows of the probe table to probe on this kernel, and how: rows whose function the kernel
// lacks or refuses are skipped, as are release and trylock-result rows the options did not ask for.
ProbePlan plan_probes(const std::set<std::string, std::less<>>& kernel_functions,
                      const std::set<std::string, std::less<>>& blacklist, std::string_view machine,
                      const Options& options);
// The same for the kernel `kernel` shows.
ProbePlan plan_probes(const KernelView& kernel, const Options& options);

// The skipped rows as a table for the terminal.
std::string format_skipped_table(const ProbePlan& plan);

// The file descriptors perf record reads its control commands from and acks on; lockrec sets them
// up in perf's process so --dry-run can print the exact command.
inline constexpr int perf_control_fd = 3;
inline constexpr int perf_ack_fd = 4;

std::vector<std::string> probe_add_command(const Options& options, const ProbePlan& plan);
std::vector<std::string> probe_delete_command(const Options& options);
std::vector<std::string> record_command(const Options& options, const std::vector<std::string>& events);

// argv as a shell would need it typed, for --dry-run and messages.
std::string shell_quote(const std::vector<std::string>& argv);

// Problems that stop a recording, each one line saying what to do. Empty means go.
struct PerfFacts {
  bool runs = false;
  std::string version_line;  // "perf version 6.1.192", or why it did not run
};
std::vector<std::string> preflight_problems(const KernelView& kernel, const Options& options, const PerfFacts& perf,
                                            bool privileged);
// The part of the preflight about the kernel alone (tracefs, kprobes, tracepoints), which --dry-run
// also checks: it needs neither root nor perf.
std::vector<std::string> kernel_problems(const KernelView& kernel, const Options& options);

// The mode a recording will use before any probe is added: auto picks kprobes when the kernel has
// kprobe_events. (If adding the probes then fails, auto falls back to contention at run time.)
Mode resolve_mode(const KernelView& kernel, Mode requested);
std::string_view name_of(Mode mode);
std::optional<Mode> mode_named(std::string_view name);  // "auto", "kprobe" or "contention"
std::vector<std::string> contention_events();
// The options given that only change which kprobes are added and how (--release, --trylock-result,
// --vmlinux): a contention recording has no probes for them to change.
std::vector<std::string> kprobe_only_options(const Options& options);

// What a finished recording was, for the side files.
struct RecordingSummary {
  Mode mode = Mode::contention;
  std::vector<std::string> events;
  std::vector<std::string> record_command;
  std::vector<std::string> probe_command;  // empty in contention mode
  const ProbePlan* plan = nullptr;         // null in contention mode
  std::optional<int> command_wait_status;  // none: no COMMAND ran (-a, or -p PID alone)
};

// Beside FILE, what the analyzer needs and perf.data lacks: FILE.kallsyms (a copy of /proc/kallsyms;
// perf 6.1 stores an empty one) and FILE.lockrec.json (kernel, modules, mode, probes; see
// docs/recorder.md). Read when called, so call it once the recording has ended.
std::filesystem::path kallsyms_file_for(const std::filesystem::path& output);
std::filesystem::path metadata_file_for(const std::filesystem::path& output);
void write_side_files(const KernelView& kernel, const Options& options, const RecordingSummary& summary);
// perf record moves a non-empty FILE to FILE.old before it writes a new one; this moves FILE's side
// files to FILE.old.kallsyms and FILE.old.lockrec.json with it (and removes FILE.old's side files
// when FILE has none), so the old recording still reads as it did. Call it just before perf starts.
void keep_side_files_with_old_recording(const std::filesystem::path& output);

// Exit codes of lockrec itself, as env(1) and timeout(1) use them, so they rarely collide with
// COMMAND's own: lockrec or perf failed, COMMAND cannot be executed, COMMAND not found.
inline constexpr int kExitLockrecFailed = 125;
inline constexpr int kExitCommandNotExecutable = 126;
inline constexpr int kExitCommandNotFound = 127;

// Runs lockrec: everything main does after parsing the command line. Returns the exit status.
int run(const Options& options);

}  // namespace lockscope::recorder
