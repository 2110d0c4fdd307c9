// Probe selection, kernel reading and perf command lines, against the fake /proc and tracefs trees
// in fixtures/recorder (see its README).
#include <lockscope/error.hpp>
#include <lockscope/recorder.hpp>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <fstream>

using namespace lockscope::recorder;
namespace probes = lockscope::probes;
namespace fs = std::filesystem;

namespace {

const fs::path fixtures = LOCKSCOPE_RECORDER_FIXTURES;

std::string definition_of(const ProbePlan& plan, std::string_view event) {
  for (const auto& probe : plan.chosen)
    if (probe.event == event) return probe.definition;
  return "";
}

std::string skip_reason(const ProbePlan& plan, std::string_view function, probes::Role role) {
  for (const auto& skipped : plan.skipped)
    if (skipped.row->function == function && skipped.row->role == role) return skipped.reason;
  return "";
}

bool contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

}  // namespace

TEST_CASE("event names map back to table rows by function, whatever the group", "[probe_table]") {
  const probes::ProbeRow* spin = probes::find_probe_by_event("probe:_raw_spin_lock");
  REQUIRE(spin != nullptr);
  CHECK(spin == probes::find_probe_by_event("lockrec:_raw_spin_lock"));
  CHECK(spin ==
        probes::find_probe_by_event("lockrec:spin_lock"));  // hand-named: perf probe -a 'spin_lock=_raw_spin_lock ...'
  CHECK(probes::find_probe_by_event("lockrec:write_lock_irq")->kind == probes::LockKind::rwlock_write);
  CHECK(spin->kind == probes::LockKind::spinlock);
  CHECK(spin->flavour == probes::Flavour::plain);
  CHECK(spin->role == probes::Role::acquire);

  const probes::ProbeRow* result = probes::find_probe_by_event("probe:_raw_spin_trylock__return");
  REQUIRE(result != nullptr);
  CHECK(result->function == "_raw_spin_trylock");
  CHECK(result->role == probes::Role::trylock_return);
  CHECK(result->fetch == probes::Fetch::return_value);
  CHECK(probes::find_probe_by_event("lockrec:_raw_spin_trylock")->role == probes::Role::trylock_entry);

  CHECK(probes::find_probe_by_event("lockrec:down_write_killable")->kind == probes::LockKind::rwsem_write);
  CHECK(probes::find_probe_by_event("_raw_read_lock_bh")->kind == probes::LockKind::rwlock_read);
  CHECK(probes::find_probe_by_event("probe:_raw_spin_lock__return") == nullptr);
  CHECK(probes::find_probe_by_event("probe:do_sys_open") == nullptr);
}

TEST_CASE("no return probe on a function that spins for its lock", "[probe_table]") {
  for (const auto& row : probes::probe_table) {
    if (row.role != probes::Role::trylock_return) continue;
    INFO(row.function);
    CHECK(row.function.find("trylock") != std::string_view::npos);
  }
}

TEST_CASE("x86_64 kernel is read from its /proc and tracefs", "[kernel]") {
  KernelView kernel(fixtures / "x86_64");
  CHECK(kernel.machine() == "x86_64");
  CHECK(kernel.release() == "6.1.0-56-amd64");
  CHECK(kernel.tracefs() == fixtures / "x86_64/sys/kernel/tracing");
  CHECK(kernel.has_kprobe_events());
  CHECK(kernel.has_contention_tracepoints());
  auto functions = kernel.kernel_functions();
  CHECK(functions.contains("_raw_spin_lock"));
  CHECK(functions.contains("mutex_lock"));
  CHECK_FALSE(functions.contains("mutex_lock_ext4_copy"));  // a module's symbol is no kernel function
  // The notes file is this machine's /sys/kernel/notes; `perf buildid-list -k` printed this id for it.
  CHECK(kernel.build_id() == "85c7e4e2ed76f4417e8aaad7c6b040d2bb897a26");
  auto modules = kernel.modules();
  REQUIRE(modules.size() == 2);
  CHECK(modules[0].name == "ext4");
  CHECK(modules[0].base_address == "0xffffffffc0a1b000");
  CHECK(modules[0].size == 1003520);
  CHECK(modules[0].sections.at(".text") == "0xffffffffc0a1b000");
  CHECK(modules[0].sections.at(".data") == "0xffffffffc0a6d000");
  CHECK(kernel.probe_events_in_group(probe_group).empty());
}

TEST_CASE("build-id is found after other notes", "[kernel]") {
  // A "Linux" note of type 6 first, then the GNU build-id (type 3) with a 2-byte id.
  std::string notes;
  auto u32 = [&](uint32_t value) { notes.append(reinterpret_cast<const char*>(&value), 4); };
  u32(6), u32(4), u32(6), notes.append("Linux\0\0\0", 8), notes.append("\1\2\3\4", 4);
  u32(4), u32(2), u32(3), notes.append("GNU\0", 4), notes.append("\xab\x01\0\0", 4);
  CHECK(build_id_from_notes(notes) == "ab01");
  CHECK(build_id_from_notes(notes.substr(0, 20)) == std::nullopt);
}

TEST_CASE("x86_64 default plan: acquisitions and trylock entries present on the kernel", "[plan]") {
  KernelView kernel(fixtures / "x86_64");
  ProbePlan plan = plan_probes(kernel, Options{});
  auto events = plan.events();
  for (auto expected :
       {"lockrec:_raw_spin_lock", "lockrec:_raw_spin_lock_irq", "lockrec:_raw_spin_lock_irqsave",
        "lockrec:_raw_spin_lock_bh", "lockrec:_raw_spin_trylock", "lockrec:_raw_spin_trylock_bh",
        "lockrec:_raw_read_lock", "lockrec:_raw_write_lock", "lockrec:_raw_write_lock_nested", "lockrec:mutex_lock",
        "lockrec:mutex_lock_interruptible", "lockrec:mutex_lock_killable", "lockrec:mutex_trylock", "lockrec:down_read",
        "lockrec:down_write_killable", "lockrec:down_read_trylock"}) {
    INFO(expected);
    CHECK(contains(events, expected));
  }
  CHECK(definition_of(plan, "lockrec:_raw_spin_lock") == "lockrec:_raw_spin_lock=_raw_spin_lock lock=%di:x64");
  CHECK(definition_of(plan, "lockrec:down_read") == "lockrec:down_read=down_read lock=%di:x64");
  // Nothing the options did not ask for, and no return probe at all.
  for (const auto& probe : plan.chosen) {
    INFO(probe.definition);
    CHECK(probe.row->role != probes::Role::release);
    CHECK(probe.definition.find("%return") == std::string::npos);
  }
  using probes::Role;
  CHECK(skip_reason(plan, "_raw_spin_lock_nested", Role::acquire) == "not in this kernel");
  CHECK(skip_reason(plan, "mutex_lock_nested", Role::acquire) == "not in this kernel");
  CHECK(skip_reason(plan, "_raw_spin_unlock", Role::release) == "needs --release");
  CHECK(skip_reason(plan, "_raw_spin_trylock", Role::trylock_return) == "needs --trylock-result");
  CHECK(plan.chosen.size() + plan.skipped.size() == probes::probe_table.size());

  std::string table = format_skipped_table(plan);
  CHECK(table.find("_raw_spin_trylock__return") != std::string::npos);
  CHECK(table.find("_raw_spin_lock_nested") != std::string::npos);
}

TEST_CASE("release and trylock-result options add unlocks and trylock return probes", "[plan]") {
  KernelView kernel(fixtures / "x86_64");
  Options options;
  options.release = true;
  options.trylock_result = true;
  ProbePlan plan = plan_probes(kernel, options);
  auto events = plan.events();
  CHECK(contains(events, "lockrec:_raw_spin_unlock_irqrestore"));
  CHECK(contains(events, "lockrec:mutex_unlock"));
  CHECK(contains(events, "lockrec:up_write"));
  CHECK(definition_of(plan, "lockrec:_raw_spin_trylock__return") ==
        "lockrec:_raw_spin_trylock=_raw_spin_trylock%return ret=$retval");
  CHECK(definition_of(plan, "lockrec:mutex_trylock__return") ==
        "lockrec:mutex_trylock=mutex_trylock%return ret=$retval");
  for (const auto& probe : plan.chosen) {
    if (probe.definition.find("%return") == std::string::npos) continue;
    INFO(probe.definition);
    CHECK(probe.row->role == probes::Role::trylock_return);
  }
  for (const auto& skipped : plan.skipped) CHECK(skipped.reason == "not in this kernel");
}

TEST_CASE("a function on the kprobe blacklist is skipped", "[plan]") {
  KernelView kernel(fixtures / "x86_64");
  ProbePlan plan = plan_probes(kernel.kernel_functions(), {"_raw_spin_lock_bh"}, "x86_64", Options{});
  CHECK_FALSE(contains(plan.events(), "lockrec:_raw_spin_lock_bh"));
  CHECK(skip_reason(plan, "_raw_spin_lock_bh", probes::Role::acquire) == "on the kernel's kprobe blacklist");
}

TEST_CASE("arm64 lockdep kernel: _nested names, %x0, tracefs under debugfs", "[plan]") {
  KernelView kernel(fixtures / "arm64-lockdep");
  CHECK(kernel.machine() == "aarch64");
  CHECK(kernel.tracefs() == fixtures / "arm64-lockdep/sys/kernel/debug/tracing");
  ProbePlan plan = plan_probes(kernel, Options{});
  auto events = plan.events();
  for (auto expected :
       {"lockrec:_raw_spin_lock_nested", "lockrec:_raw_spin_lock_irqsave_nested", "lockrec:_raw_spin_lock_nest_lock",
        "lockrec:mutex_lock_nested", "lockrec:_mutex_lock_nest_lock", "lockrec:down_write_nested",
        "lockrec:_down_write_nest_lock", "lockrec:down_read_killable_nested"}) {
    INFO(expected);
    CHECK(contains(events, expected));
  }
  // With lockdep mutex_lock is a macro for mutex_lock_nested: no such function to probe.
  CHECK_FALSE(contains(events, "lockrec:mutex_lock"));
  CHECK(skip_reason(plan, "mutex_lock", probes::Role::acquire) == "not in this kernel");
  CHECK(definition_of(plan, "lockrec:mutex_lock_nested") == "lockrec:mutex_lock_nested=mutex_lock_nested lock=%x0:x64");
}

TEST_CASE("with a vmlinux, probes fetch the lock by its DWARF parameter name on any architecture", "[plan]") {
  KernelView kernel(fixtures / "arm64-lockdep");
  Options options;
  options.vmlinux = "/usr/lib/debug/boot/vmlinux-6.1.0-56-arm64";
  ProbePlan plan = plan_probes(kernel.kernel_functions(), {}, "riscv64", options);
  CHECK(definition_of(plan, "lockrec:_raw_spin_lock") == "lockrec:_raw_spin_lock=_raw_spin_lock lock=lock:x64");
  CHECK(definition_of(plan, "lockrec:down_read") == "lockrec:down_read=down_read lock=sem:x64");
  auto add = probe_add_command(options, plan);
  REQUIRE(add.size() > 6);
  CHECK(std::vector<std::string>(add.begin(), add.begin() + 6) ==
        std::vector<std::string>{"perf", "probe", "--quiet", "--no-inlines", "--vmlinux",
                                 "/usr/lib/debug/boot/vmlinux-6.1.0-56-arm64"});
}

TEST_CASE("an architecture without a known argument register needs --vmlinux", "[plan]") {
  KernelView kernel(fixtures / "x86_64");
  CHECK_THROWS_WITH(plan_probes(kernel.kernel_functions(), {}, "riscv64", Options{}),
                    Catch::Contains("riscv64") && Catch::Contains("--vmlinux"));
}

TEST_CASE("a stale lockrec group is found, and only lockrec's probes", "[kernel]") {
  KernelView kernel(fixtures / "arm64-lockdep");
  CHECK(kernel.probe_events_in_group(probe_group) ==
        std::vector<std::string>{"lockrec:_raw_spin_lock", "lockrec:mutex_trylock__return"});
  CHECK(kernel.probe_events_in_group("probe") == std::vector<std::string>{"probe:do_sys_openat2"});
}

TEST_CASE("perf probe command lines", "[commands]") {
  KernelView kernel(fixtures / "x86_64");
  ProbePlan plan = plan_probes(kernel, Options{});
  auto add = probe_add_command(Options{}, plan);
  REQUIRE(add.size() == 4 + 2 * plan.chosen.size());
  CHECK(std::vector<std::string>(add.begin(), add.begin() + 6) ==
        std::vector<std::string>{"perf", "probe", "--quiet", "--no-inlines", "--add",
                                 "lockrec:_raw_spin_lock=_raw_spin_lock lock=%di:x64"});
  CHECK(probe_delete_command(Options{}) == std::vector<std::string>{"perf", "probe", "--quiet", "--del", "lockrec:*"});
}

TEST_CASE("perf record command lines", "[commands]") {
  Options options;
  options.output = "out.data";
  CHECK(record_command(options, contention_events()) ==
        std::vector<std::string>{"perf", "record", "-o", "out.data", "--all-cpus", "--call-graph", "fp", "--delay=-1",
                                 "--control=fd:3,4", "-e", "lock:contention_begin", "-e", "lock:contention_end"});
  options.pid = 42;
  options.cgroup = "user.slice";
  options.call_graph = "dwarf";
  options.sample_every = 10;
  options.max_size = "200M";
  options.compress = true;
  options.perf = "/usr/bin/perf";
  CHECK(record_command(options, {"lockrec:_raw_spin_lock", "lockrec:mutex_lock"}) ==
        std::vector<std::string>{"/usr/bin/perf",
                                 "record",
                                 "-o",
                                 "out.data",
                                 "--pid",
                                 "42",
                                 "--call-graph",
                                 "dwarf",
                                 "-c",
                                 "10",
                                 "--no-period",
                                 "--max-size=200M",
                                 "-z",
                                 "--delay=-1",
                                 "--control=fd:3,4",
                                 "-e",
                                 "lockrec:_raw_spin_lock",
                                 "-G",
                                 "user.slice",
                                 "-e",
                                 "lockrec:mutex_lock",
                                 "-G",
                                 "user.slice"});
}

TEST_CASE("shell quoting for --dry-run", "[commands]") {
  CHECK(shell_quote({"perf", "probe", "--add", "lockrec:a=a lock=%di:x64", "it's", "lockrec:*"}) ==
        "perf probe --add 'lockrec:a=a lock=%di:x64' 'it'\\''s' 'lockrec:*'");
  CHECK(shell_quote({"ret=$retval", ""}) == "'ret=$retval' ''");
}

TEST_CASE("mode: auto is kprobe only where kprobe_events exists", "[preflight]") {
  CHECK(resolve_mode(KernelView(fixtures / "x86_64"), Mode::automatic) == Mode::kprobe);
  CHECK(resolve_mode(KernelView(fixtures / "no-kprobes"), Mode::automatic) == Mode::contention);
  CHECK(resolve_mode(KernelView(fixtures / "no-kprobes"), Mode::kprobe) == Mode::kprobe);
}

TEST_CASE("options that only change kprobes are named, to say they do nothing in contention mode", "[preflight]") {
  Options options;
  CHECK(kprobe_only_options(options).empty());
  options.release = true;
  CHECK(kprobe_only_options(options) == std::vector<std::string>{"--release"});
  options.trylock_result = true;
  options.vmlinux = "vmlinux";
  CHECK(kprobe_only_options(options) == std::vector<std::string>{"--release", "--trylock-result", "--vmlinux"});
}

TEST_CASE("preflight: one actionable line per problem", "[preflight]") {
  PerfFacts perf_ok{true, "perf version 6.1.192"};
  KernelView no_kprobes(fixtures / "no-kprobes");
  Options options;
  CHECK(preflight_problems(no_kprobes, options, perf_ok, true).empty());

  options.mode = Mode::kprobe;
  auto problems = preflight_problems(no_kprobes, options, perf_ok, true);
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0], Catch::Contains("kprobe_events") && Catch::Contains("--mode contention"));

  problems = preflight_problems(no_kprobes, Options{}, PerfFacts{false, "No such file or directory"}, false);
  REQUIRE(problems.size() == 3);
  CHECK_THAT(problems[0], Catch::Contains("linux-perf"));
  CHECK_THAT(problems[1], Catch::Contains("root") && Catch::Contains("CAP_PERFMON"));
  CHECK_THAT(problems[2], Catch::Contains("perf_event_paranoid is 2"));
}

TEST_CASE("preflight: tracefs not mounted", "[preflight]") {
  // An empty mount point, as on a machine where nothing mounted tracefs.
  fs::path root = fs::temp_directory_path() / ("lockrec-unmounted-" + std::to_string(getpid()));
  fs::create_directories(root / "sys/kernel/tracing");
  auto problems = preflight_problems(KernelView(root), Options{}, PerfFacts{true, "perf version 6.1"}, true);
  fs::remove_all(root);
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0], Catch::Contains("mount -t tracefs"));
}

// A recording rec.data of `true` on the x86_64 fixture kernel, in a scratch directory of its own.
struct SideFileScratch {
  explicit SideFileScratch(const std::string& name)
      : directory(fs::temp_directory_path() / (name + "-" + std::to_string(getpid()))), kernel(fixtures / "x86_64") {
    fs::create_directories(directory);
    options.output = directory / "rec.data";
    options.command = {"true"};
  }
  ~SideFileScratch() { fs::remove_all(directory); }
  fs::path directory;
  KernelView kernel;
  Options options;
};

TEST_CASE("side files: kallsyms copy and the JSON the analyzer reads", "[side_files]") {
  SideFileScratch scratch("lockrec-side");
  const fs::path& directory = scratch.directory;
  const KernelView& kernel = scratch.kernel;
  Options& options = scratch.options;
  ProbePlan plan = plan_probes(kernel, options);
  RecordingSummary summary;
  summary.mode = Mode::kprobe;
  summary.plan = &plan;
  summary.events = plan.events();
  summary.record_command = record_command(options, summary.events);
  summary.probe_command = probe_add_command(options, plan);
  summary.command_wait_status = 3 << 8;  // exited with 3
  std::ofstream(options.output) << "perf's recording: 26 bytes";
  write_side_files(kernel, options, summary);

  auto slurp = [](const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK(slurp(directory / "rec.data.kallsyms") == slurp(fixtures / "x86_64/proc/kallsyms"));
  // Kernel addresses stay private to the owner, as perf.data does.
  for (auto name : {"rec.data.kallsyms", "rec.data.lockrec.json"})
    CHECK(fs::status(directory / name).permissions() == (fs::perms::owner_read | fs::perms::owner_write));
  auto metadata = nlohmann::json::parse(slurp(directory / "rec.data.lockrec.json"));

  CHECK(metadata["format_version"] == 1);
  CHECK(metadata["perf_data_bytes"] == 26);  // ties the side files to the finished recording
  CHECK(metadata["mode"] == "kprobe");
  CHECK(metadata["kallsyms"] == "rec.data.kallsyms");
  CHECK(metadata["kernel"]["release"] == "6.1.0-56-amd64");
  CHECK(metadata["kernel"]["build_id"] == "85c7e4e2ed76f4417e8aaad7c6b040d2bb897a26");
  CHECK(metadata["modules"][0]["name"] == "ext4");
  CHECK(metadata["modules"][0]["sections"][".text"] == "0xffffffffc0a1b000");
  CHECK(metadata["command_status"]["exit_code"] == 3);
  REQUIRE(metadata["probes"].size() == plan.chosen.size());
  auto first = metadata["probes"][0];
  CHECK(first["event"] == "lockrec:_raw_spin_lock");
  CHECK(first["function"] == "_raw_spin_lock");
  CHECK(first["kind"] == "spinlock");
  CHECK(first["flavour"] == "plain");
  CHECK(first["role"] == "acquire");
  CHECK(metadata["skipped"].size() == plan.skipped.size());
  CHECK(metadata["perf_probe"][0] == "perf");
}

TEST_CASE("side files: a write that fails midway leaves the previous file whole", "[side_files]") {
  // A full disk, simulated by RLIMIT_FSIZE (writes past it fail with EFBIG): the kallsyms copy
  // (1,970 bytes) cannot be written past 1,000.
  SideFileScratch scratch("lockrec-side-full");
  const fs::path& directory = scratch.directory;
  RecordingSummary summary;
  summary.mode = Mode::contention;
  std::ofstream(directory / "rec.data.kallsyms") << "the previous recording's kallsyms\n";

  rlimit saved{};
  REQUIRE(getrlimit(RLIMIT_FSIZE, &saved) == 0);
  rlimit small = saved;
  small.rlim_cur = 1000;
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  REQUIRE(setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string error;
  try {
    write_side_files(scratch.kernel, scratch.options, summary);
  } catch (const lockscope::Error& caught) {
    error = caught.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, old_handler);

  CHECK_THAT(error, Catch::Contains("rec.data.kallsyms") && Catch::Contains("File too large"));
  std::ifstream in(directory / "rec.data.kallsyms");
  CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == "the previous recording's kallsyms\n");
  std::vector<std::string> left;
  for (const auto& entry : fs::directory_iterator(directory)) left.push_back(entry.path().filename());
  CHECK(left == std::vector<std::string>{"rec.data.kallsyms"});  // no temporary, no JSON
}

TEST_CASE("mode names round-trip", "[commands]") {
  for (Mode mode : {Mode::automatic, Mode::kprobe, Mode::contention}) CHECK(mode_named(name_of(mode)) == mode);
  CHECK(mode_named("kprobes") == std::nullopt);
}
