// `lockanalyze contention FILE`: the wait statistics `perf lock contention -i FILE` prints, from
// the recording's lock:contention_begin/end events, named with the symbolizer.
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "commands.hpp"
#include "contention_naming.hpp"
#include "contention_stats.hpp"
#include "contention_visitor.hpp"
#include "hex_number.hpp"
#include "kernel_symbols.hpp"
#include "lockscope/error.hpp"
#include "lockscope/lock_events.hpp"
#include "lockscope/perf_data.hpp"
#include "lockscope/symbolizer.hpp"
#include "lockscope/unique_fd.hpp"

namespace lockscope::cli {
namespace {

using contention::AddressRange;
using contention::ContentionStats;
using contention::ContentionVisitor;
using contention::SymbolizerCallerNamer;
using symbolizer::Symbolizer;

struct ContentionCommandOptions {
  std::string input;
  std::string kallsyms;
  std::string vmlinux;
  bool force_vmlinux = false;
  std::string format = "text";
  std::string sort_key = "wait_total";
  std::vector<std::string> lock_text_ranges;  // "START-END", hex
  size_t entries = static_cast<size_t>(-1);
  int max_stack = 8;
  int stack_skip = 3;
  bool strict = false;
};

uint64_t range_end(const std::string& text, const std::string& option) {
  auto value = parse_hex(text);
  if (!value) throw Error("bad address \"" + text + "\" in " + option).hint("give START-END in hex");
  return *value;
}

AddressRange parse_range(const std::string& text) {
  const size_t dash = text.find('-');
  if (dash == std::string::npos) {
    throw Error("bad range \"" + text + "\" in --lock-text")
        .hint("give START-END in hex, e.g. the __lock_text_start and __lock_text_end addresses");
  }
  AddressRange range{range_end(text.substr(0, dash), "--lock-text"), range_end(text.substr(dash + 1), "--lock-text")};
  if (range.end <= range.start) throw Error("empty range \"" + text + "\" in --lock-text");
  return range;
}

nlohmann::json rows_as_json(const std::vector<contention::ContentionRow>& rows, size_t entries) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : rows) {
    if (out.size() == contention::rows_to_print(entries)) break;
    out.push_back({{"caller", row.caller},
                   {"type", row.type},
                   {"contended", row.contended},
                   {"total_wait_ns", row.total_wait_ns},
                   {"max_wait_ns", row.max_wait_ns},
                   {"min_wait_ns", row.min_wait_ns},
                   {"avg_wait_ns", row.avg_wait_ns}});
  }
  return out;
}

// A pipe is read once, but the contention table reads the recording twice (its kernel map picks
// the symbols before the samples are named): standard input is first copied to an unlinked
// temporary file ($TMPDIR, else /tmp), read through /proc/self/fd and named <stdin> in messages.
class SpooledStdin {
 public:
  SpooledStdin() {
    const char* tmpdir = std::getenv("TMPDIR");
    std::string directory = tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
    std::string name = directory + "/lockanalyze-stdin-XXXXXX";
    fd_ = UniqueFd(mkstemp(name.data()));
    if (!fd_.valid()) {
      throw Error(std::string("cannot create a file to hold standard input: ") + std::strerror(errno))
          .file(directory)
          .hint("set TMPDIR to a writable directory");
    }
    unlink(name.c_str());
    std::vector<char> buffer(1 << 16);
    uint64_t total = 0;
    while (true) {
      ssize_t got = read(STDIN_FILENO, buffer.data(), buffer.size());
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw Error(std::string("cannot read standard input: ") + std::strerror(errno)).file("<stdin>");
      if (got == 0) break;
      for (ssize_t done = 0; done < got;) {
        ssize_t put = write(fd_.get(), buffer.data() + done, static_cast<size_t>(got - done));
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) {
          throw Error(std::string("cannot hold standard input in a temporary file: ") + std::strerror(errno))
              .file(directory)
              .hint("set TMPDIR to a directory with room for the recording");
        }
        done += put;
      }
      total += static_cast<uint64_t>(got);
    }
    if (total == 0) throw Error("standard input is empty").file("<stdin>").hint("pipe perf record -o - into it");
  }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_.get()); }

 private:
  UniqueFd fd_;
};

void run_contention(const ContentionCommandOptions& options) {
  std::vector<AddressRange> lock_text;
  for (const std::string& text : options.lock_text_ranges) lock_text.push_back(parse_range(text));
  std::optional<SpooledStdin> spooled;
  std::string input = options.input, display_name;
  if (options.input == "-") {
    spooled.emplace();
    input = spooled->path();
    display_name = "<stdin>";
  }
  const perf::KernelImageInfo recording = perf::read_kernel_image_info(input, display_name);
  KernelSymbols kernel_symbols = open_kernel_symbols(
      SymbolSourceOptions{options.input, options.vmlinux, options.kallsyms, "", options.force_vmlinux, {}},
      KernelFacts::from(recording));
  for (const std::string& note : kernel_symbols.notes) std::fprintf(stderr, "warning: %s\n", note.c_str());
  if (!kernel_symbols.symbols) {
    throw Error("cannot name callers: no symbols for the recording's kernel (" +
                (recording.os_release.empty() ? std::string("unknown") : recording.os_release) + ")")
        .file(options.input)
        .hint("pass --kallsyms (a copy of that kernel's /proc/kallsyms) or --vmlinux");
  }
  std::unique_ptr<Symbolizer>& symbols = kernel_symbols.symbols;
  if (lock_text.empty()) lock_text = contention::lock_function_ranges(*symbols);
  if (lock_text.empty()) {
    std::fprintf(stderr,
                 "warning: the symbols have no __sched_text/__lock_text bounds: lock functions are "
                 "not recognised, so callers may differ from perf's (pass --lock-text)\n");
  }
  SymbolizerCallerNamer namer(*symbols, std::move(lock_text));

  contention::ContentionOptions stats_options;
  stats_options.max_stack = options.max_stack;
  stats_options.stack_skip = options.stack_skip;
  stats_options.sort_key = contention::sort_key_from_name(options.sort_key);
  ContentionStats stats(namer, stats_options);
  ContentionVisitor visitor(stats);
  LockEventFeed feed({&visitor});
  auto reader = perf::PerfDataReader::open(input, display_name);
  // perf processes samples in time order (ordered_events); pairing depends on it.
  reader->read(feed, perf::RecordOrder::time);
  if (visitor.begins() == 0) {
    // perf prints an empty table then; so do we, with a word on stderr about why.
    std::fprintf(stderr,
                 "warning: %s: no lock:contention_begin events (record with perf record "
                 "-e lock:contention_begin,lock:contention_end -g)\n",
                 display_name.empty() ? options.input.c_str() : display_name.c_str());
  }

  const auto rows = stats.rows();
  if (options.format == "json") {
    std::printf("%s\n", rows_as_json(rows, options.entries).dump(2).c_str());
  } else {
    std::fputs(contention::format_table(rows, options.entries).c_str(), stdout);
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout))
    throw Error(std::string("cannot write the table to standard output: ") + std::strerror(errno))
        .hint("is the disk full, or the reader gone?");
  print_read_warnings(reader->stats());
  fail_if_damaged(reader->stats(), options.strict);
}

}  // namespace

void add_contention_command(CLI::App& app) {
  auto options = std::make_shared<ContentionCommandOptions>();
  CLI::App* command =
      app.add_subcommand("contention", "Lock contention wait statistics, as perf lock contention -i FILE prints them");
  add_input_option(command, options->input,
                   "perf.data with lock:contention_begin/end and -g, or - for a pipe-mode stream");
  auto* kallsyms = command->add_option("--kallsyms", options->kallsyms, "the recorded kernel's kallsyms");
  command->add_flag("--force-vmlinux", options->force_vmlinux,
                    "use --vmlinux even when its build-id is not the recording's kernel's");
  command->add_option("--vmlinux", options->vmlinux, "the recorded kernel's vmlinux")->excludes(kallsyms);
  command->add_option("--format", options->format, "text (perf's table) or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  command->add_option("-k,--key", options->sort_key, "sort key: contended, wait_total, wait_max, wait_min, avg_wait")
      ->capture_default_str();
  command->add_option("-E,--entries", options->entries, "print at most this many rows");
  command->add_option("--max-stack", options->max_stack, "frames per stack, as perf's --max-stack")
      ->capture_default_str();
  command->add_option("--stack-skip", options->stack_skip, "frames to skip, as perf's --stack-skip")
      ->capture_default_str();
  command->add_option("--lock-text", options->lock_text_ranges,
                      "START-END (hex) of code perf treats as lock functions: give both the "
                      "__sched_text and the __lock_text range of the recorded kernel");
  add_strict_option(command, options->strict);
  command->callback([options] { run_contention(*options); });
}

}  // namespace lockscope::cli
