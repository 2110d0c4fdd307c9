// `lockanalyze report FILE --vmlinux V` (also plain `lockanalyze FILE --vmlinux V`): which
// processes hold common locks, with the first stack of each, groups and pairs of holders.
#include <spawn.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <memory>
#include <sstream>
#include <vector>

#include "commands.hpp"
#include "contention_naming.hpp"
#include "contention_visitor.hpp"
#include "holder_model.hpp"
#include "kernel_symbols.hpp"
#include "lock_event_feed.hpp"
#include "lockdep.hpp"
#include "lockscope/error.hpp"
#include "lockscope/perf_data.hpp"
#include "lockscope/symbolizer.hpp"
#include "lockscope/unique_fd.hpp"
#include "report_output.hpp"
#include "sharing_report.hpp"

namespace lockscope::cli {
namespace {

// The exit status of `--fail-on-findings` when lockdep's rules found something (1 is an error).
constexpr int kExitFindings = 3;

// Renders DOT text as SVG into `svg_path` with graphviz's dot, started from an argument vector
// (never a shell: the path is the user's and may hold any character). The DOT goes through a
// temporary file, so there is no pipe to a child that may die half-way.
void render_svg(const std::string& dot_text, const std::string& svg_path) {
  std::filesystem::path directory = std::filesystem::absolute(svg_path).parent_path();
  std::error_code ignored;
  if (!std::filesystem::is_directory(directory, ignored))
    throw Error("cannot write the SVG: the directory " + directory.string() + " does not exist")
        .file(svg_path)
        .hint("create it, or give --svg a path in an existing directory");
  std::string dot_path = (std::filesystem::temp_directory_path() / "lockanalyze-graph.XXXXXX").string();
  UniqueFd dot_fd(mkstemp(dot_path.data()));
  if (!dot_fd.valid()) throw Error(std::string("cannot create a temporary file: ") + std::strerror(errno));
  struct RemoveOnExit {
    std::string path;
    ~RemoveOnExit() { unlink(path.c_str()); }
  } remove_dot{dot_path};
  bool written = write(dot_fd.get(), dot_text.data(), dot_text.size()) == static_cast<ssize_t>(dot_text.size());
  if (dot_fd.reset() != 0) written = false;
  if (!written) throw Error("cannot write the graph for graphviz").file(dot_path).hint("is /tmp full?");

  std::vector<std::string> words = {"dot", "-Tsvg", "-o", svg_path, dot_path};
  std::vector<char*> argv;
  for (auto& word : words) argv.push_back(word.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int spawn_error = posix_spawnp(&pid, "dot", nullptr, nullptr, argv.data(), environ);
  if (spawn_error != 0)
    throw Error(std::string("cannot run graphviz dot: ") + std::strerror(spawn_error))
        .hint("install graphviz (apt-get install graphviz)");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error(std::string("waitpid failed: ") + std::strerror(errno));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error("graphviz dot failed to write the SVG (its messages are above)").file(svg_path);
}

struct ReportOptions {
  std::string input;
  std::string vmlinux;
  bool force_vmlinux = false;
  std::string kallsyms;
  std::string kaslr_offset;
  std::string format = "text";
  std::string output = "-";
  std::string svg;
  std::string by = "process";
  std::string locks_by = "address";
  std::string time_window;
  bool irq_as_task = false;
  bool fail_on_findings = false;
  bool strict = false;
  size_t stacks = 1;
  report::Filters filters;
  bool kernel_threads = false, no_kernel_threads = false;
  report::TextOptions text;
};

// perf's --time syntax: START,END in seconds as perf script prints them; either may be empty.
// Usage checks of the report's filters: a value that cannot match anything is a usage error naming
// it, never an empty report with status 0. Each returns "" when the value is good.
std::string bad_time_window(const std::string& text) {
  auto comma = text.find(',');
  if (comma == std::string::npos || text.find(',', comma + 1) != std::string::npos)
    return "expected START,END in seconds (one comma; either side may be empty), e.g. 14.2,14.9";
  std::optional<double> ends[2];
  std::string parts[2] = {text.substr(0, comma), text.substr(comma + 1)};
  for (int i = 0; i < 2; ++i) {
    if (parts[i].empty()) continue;
    char* end = nullptr;
    double value = std::strtod(parts[i].c_str(), &end);
    if (end != parts[i].c_str() + parts[i].size() || !std::isfinite(value) || value < 0)
      return "'" + parts[i] + "' is not a number of seconds (a finite number from 0)";
    ends[i] = value;
  }
  if (ends[0] && ends[1] && *ends[0] >= *ends[1]) return "START must come before END";
  return "";
}

std::string bad_lock(const std::string& text) {
  if (!text.starts_with("0x")) return "";  // a name: anything may be one
  std::string_view digits = std::string_view(text).substr(2);
  if (digits.empty() || digits.size() > 16 ||
      digits.find_first_not_of("0123456789abcdefABCDEF") != std::string_view::npos)
    return "'" + text + "' is not an address: 0x and 1 to 16 hex digits, or a lock's name";
  return "";
}

std::string bad_pid(const std::string& text) {
  if (text.empty() || text.size() > 10 || text.find_first_not_of("0123456789") != std::string::npos)
    return "'" + text + "' is not a pid (a number from 0; 0 is the idle task)";
  return "";
}

std::pair<std::optional<uint64_t>, std::optional<uint64_t>> parse_window(const std::string& text) {
  auto comma = text.find(',');
  if (comma == std::string::npos) {
    throw Error("--time '" + text + "' needs a comma").hint("write START,END in seconds, e.g. 14.2,14.9");
  }
  auto seconds = [&](const std::string& part) -> std::optional<uint64_t> {
    if (part.empty()) return std::nullopt;
    try {
      return static_cast<uint64_t>(std::stod(part) * 1e9);
    } catch (const std::exception&) {
      throw Error("--time '" + text + "': '" + part + "' is not a number of seconds");
    }
  };
  return {seconds(text.substr(0, comma)), seconds(text.substr(comma + 1))};
}

// When stderr is a terminal, shows how far the read is: one more consumer of the feed.
class ReadProgress final : public LockEventConsumer {
 public:
  explicit ReadProgress(uint64_t file_size)
      : file_size_(file_size), enabled_(isatty(STDERR_FILENO) && file_size > (64u << 20)) {}
  ~ReadProgress() override {
    if (shown_) std::fprintf(stderr, "\r%60s\r", "");
  }
  ReadProgress(const ReadProgress&) = delete;
  ReadProgress& operator=(const ReadProgress&) = delete;

  void on_sample(const perf::Sample& sample) override {
    if (enabled_ && (++samples_ & 0xffff) == 0) {
      std::fprintf(stderr, "\rlockanalyze: read %" PRIu64 " of %" PRIu64 " MB", sample.file_offset >> 20,
                   file_size_ >> 20);
      shown_ = true;
    }
  }

 private:
  uint64_t file_size_;
  bool enabled_;
  bool shown_ = false;
  uint64_t samples_ = 0;
};

void run_report(const ReportOptions& options) {
  model::Options model_options;
  model_options.group_by = options.by == "thread" ? model::GroupBy::thread : model::GroupBy::process;
  model_options.irq_as_task = options.irq_as_task;
  model_options.stacks_per_pair = std::max<size_t>(options.stacks, 1);
  if (!options.time_window.empty()) {
    std::tie(model_options.window_start_ns, model_options.window_end_ns) = parse_window(options.time_window);
  }

  // Symbols come first (a file's kernel facts are read ahead), so the contention feed can name
  // callers while the recording is read once. A pipe can be read only once: its symbols follow.
  // lockrec's side file, like its kallsyms, is found by the recording's name: a pipe has none.
  SymbolSourceOptions sources{options.input,        options.vmlinux,       options.kallsyms,
                              options.kaslr_offset, options.force_vmlinux, {}};
  KernelSymbols kernel_symbols;
  std::optional<report::LockrecSideFile> lockrec;
  std::optional<KernelFacts> file_kernel;
  if (options.input != "-") {
    perf::KernelImageInfo image = perf::read_kernel_image_info(options.input);
    KernelFacts kernel = KernelFacts::from(image);
    lockrec = report::read_lockrec_side_file(options.input);
    if (lockrec) {
      std::error_code size_error;
      uintmax_t recording_bytes = std::filesystem::file_size(options.input, size_error);
      if (!size_error) report::check_same_recording(*lockrec, recording_bytes);
      report::check_same_kernel(*lockrec, image.os_release, image.build_id_hex);
      // perf.data may lack the kernel's build-id (the guest's kprobe recording in fixtures/kprobe
      // has no BUILD_ID section); lockrec read it from /sys/kernel/notes, so the vmlinux is still
      // checked against the kernel that was recorded.
      if (kernel.build_id_hex.empty()) kernel.build_id_hex = lockrec->kernel_build_id;
    }
    file_kernel = kernel;
  }
  auto reader = perf::PerfDataReader::open(options.input);
  // Opening a vmlinux (its symbol table read and sorted, its indexes built) takes about as long as
  // reading the recording. Only contention tracepoints need names during the read (their callers);
  // without them a second thread opens the symbols meanwhile, and its error, if any, is thrown
  // when the read is done.
  std::future<KernelSymbols> opening;
  if (file_kernel) {
    const std::vector<perf::EventDesc>& events = reader->metadata().events;
    const bool names_while_reading = std::any_of(events.begin(), events.end(), [](const perf::EventDesc& event) {
      EventRole::Type type = role_of_event(event.name).type;
      return type == EventRole::Type::contention_begin || type == EventRole::Type::contention_end;
    });
    if (names_while_reading) {
      kernel_symbols = open_kernel_symbols(sources, *file_kernel);
    } else {
      opening = std::async(std::launch::async, [&sources, kernel = *file_kernel] {
        KernelSymbols opened = open_kernel_symbols(sources, kernel);
        if (opened.symbols) opened.symbols->warm_up();
        return opened;
      });
    }
  }
  std::unique_ptr<symbolizer::Symbolizer>& symbols = kernel_symbols.symbols;
  std::unique_ptr<contention::SymbolizerCallerNamer> caller_namer;
  std::unique_ptr<contention::ContentionStats> contention_stats;
  std::unique_ptr<contention::ContentionVisitor> contention_feed;
  if (symbols) {
    caller_namer =
        std::make_unique<contention::SymbolizerCallerNamer>(*symbols, contention::lock_function_ranges(*symbols));
    contention_stats = std::make_unique<contention::ContentionStats>(*caller_namer, contention::ContentionOptions{});
    contention_feed = std::make_unique<contention::ContentionVisitor>(*contention_stats);
  }

  model::HolderModel model(model_options);
  lockdep::LockdepReplay lockdep;
  {
    const perf::Metadata& metadata = reader->metadata();
    ReadProgress progress(metadata.pipe_mode ? 0 : metadata.data_offset + metadata.data_size);
    LockEventFeed all({&model, &lockdep, contention_feed.get(), &progress});
    reader->read(all, perf::RecordOrder::time);
    all.finish();
  }
  if (opening.valid()) kernel_symbols = opening.get();
  lockdep.finish(&model);

  report::Filters filters = options.filters;
  if (options.locks_by == "class") filters.identity = report::LockIdentity::lock_class;
  if (options.kernel_threads) filters.kernel_threads = true;
  if (options.no_kernel_threads) filters.kernel_threads = false;

  if (options.input == "-") {
    const perf::Metadata& metadata = reader->metadata();
    kernel_symbols =
        open_kernel_symbols(sources, KernelFacts::from(perf::kernel_image_info(metadata, model.kernel_text_address())));
    if (model.is_contention_recording()) {
      kernel_symbols.notes.push_back("the contention table needs a file: a pipe is read only once");
    }
  }
  report::Namer namer(symbols.get(), kernel_symbols.modules.get(), reader->metadata().arch);
  report::Report report = report::build_report(model, *reader, filters, namer);
  if (contention_stats && model.is_contention_recording()) report.contention = contention_stats->rows();
  report.header.symbol_source = kernel_symbols.source;
  report.header.vmlinux = options.vmlinux;
  report.header.lockrec = std::move(lockrec);
  // The header says it too, but a report read by a script may never be seen: stderr is.
  if (kernel_symbols.forced_vmlinux_note)
    std::fprintf(stderr, "lockanalyze: warning: %s\n",
                 kernel_symbols.notes[*kernel_symbols.forced_vmlinux_note].c_str());
  report.header.notes.insert(report.header.notes.begin(), kernel_symbols.notes.begin(), kernel_symbols.notes.end());
  for (const auto& warning : reader->stats().warnings) report.header.notes.push_back(warning);
  if (filters.identity == report::LockIdentity::lock_class) {
    lockdep.add_class_findings([&namer](uint64_t address, std::span<const uint64_t> stack) {
      return report::dynamic_lock_class(namer, address, stack);
    });
  }
  report.findings = lockdep.findings();
  for (const auto& note : lockdep.notes()) report.header.notes.push_back(note);
  for (const auto& warning : report.header.warnings)
    std::fprintf(stderr, "lockanalyze: warning: %s\n", warning.c_str());

  if (options.output == "-") {
    report::write_report(report, options.format, options.text, std::cout);
    std::cout.flush();
    if (!std::cout) throw Error("cannot write the report to standard output");
  } else {
    std::ofstream file(options.output);
    report::write_report(report, options.format, options.text, file);
    if (!file) throw Error("cannot write the report").file(options.output).hint("check the path");
  }
  if (!options.svg.empty()) {
    std::ostringstream dot;
    report::write_report(report, "dot", options.text, dot);
    render_svg(dot.str(), options.svg);
  }
  fail_if_damaged(reader->stats(), options.strict);
  // For kernel developers' CI: the report is out, the status says whether it found anything.
  if (options.fail_on_findings && !report.findings.empty()) throw CLI::RuntimeError(kExitFindings);
}

}  // namespace

void add_report_command(CLI::App& app) {
  auto options = std::make_shared<ReportOptions>();
  CLI::App* command =
      app.add_subcommand("report", "Which processes hold common locks (the default: `lockanalyze FILE --vmlinux V`)");
  add_input_option(command, options->input, "perf.data recording, or - for a pipe-mode stream");
  command->add_option("--vmlinux", options->vmlinux, "vmlinux with DWARF of the recorded kernel");
  command->add_flag("--force-vmlinux", options->force_vmlinux,
                    "use --vmlinux even when its build-id is not the recording's kernel's");
  command->add_option("--kallsyms", options->kallsyms,
                      "kallsyms of the recorded kernel (default: lockrec's FILE.kallsyms, or "
                      "/proc/kallsyms when the recording is of the running kernel)");
  command->add_option("--kaslr-offset", options->kaslr_offset,
                      "relocation of the kernel (default: from the recording's kernel map)");
  command->add_option("--format", options->format, "Output format")
      ->check(CLI::IsMember(report::output_formats()))
      ->capture_default_str();
  command->add_option("-o,--output", options->output, "Write the report here");
  command->add_option("--svg", options->svg, "Also render the holder-lock graph as SVG (graphviz)");
  command
      ->add_option("--locks-by", options->locks_by,
                   "address: each lock apart; class: unnamed (dynamic) locks of one class as one")
      ->check(CLI::IsMember({"address", "class"}))
      ->capture_default_str();
  command->add_option("--by", options->by, "process: threads roll up; thread: keep them apart")
      ->check(CLI::IsMember({"process", "thread"}))
      ->capture_default_str();
  command->add_flag("--irq-as-task", options->irq_as_task,
                    "Count interrupt-context acquisitions under the interrupted task");
  command->add_option("--stacks", options->stacks, "Distinct stacks kept per (holder, lock)")->capture_default_str();
  command->add_option("--pid", options->filters.pids, "Only these holders (pid; repeatable)")
      ->check(CLI::Validator([](std::string& value) { return bad_pid(value); }, "PID"));
  command->add_option("--comm", options->filters.comms, "Only holders with this comm (repeatable)");
  command->add_option("--lock", options->filters.locks, "Only this lock (name or 0x address)")
      ->check(CLI::Validator([](std::string& value) { return bad_lock(value); }, "LOCK"));
  command->add_option("--min-holders", options->filters.min_holders, "Show locks held by at least N holders")
      ->capture_default_str();
  command->add_flag("--exclude-idle", options->filters.exclude_idle, "Leave out the idle task (pid 0)");
  CLI::Option* only_kernel_threads =
      command->add_flag("--kernel-threads", options->kernel_threads, "Only kernel threads");
  command->add_flag("--no-kernel-threads", options->no_kernel_threads, "Leave out kernel threads")
      ->excludes(only_kernel_threads);
  command
      ->add_option("--time", options->time_window,
                   "Only acquisitions in START,END (seconds, as perf script prints them)")
      ->check(CLI::Validator([](std::string& value) { return bad_time_window(value); }, "START,END"));
  command->add_flag("--fail-on-findings", options->fail_on_findings,
                    "Exit with status 3 when lockdep's rules find something (for CI)");
  add_strict_option(command, options->strict);
  command->add_option("--top", options->text.top_locks, "Locks shown in the text report")->capture_default_str();
  command->callback([options] { run_report(*options); });
}

}  // namespace lockscope::cli
