// The symbolizer against the real Debian vmlinux and the shared kprobe recording, with perf and gdb as
// the oracles:
//  - every static lock address the probes saw (lock=0xffffffff8...), every function-local static
//    lock (lock.N) and the file statics with duplicate names get the symbol and offset of
//    gdb's `info symbol`, gdb evaluates the printed name to the address, and `whatis` is a lock type;
//  - every distinct kernel frame of the recording agrees with `perf script -k vmlinux` on
//    symbol+offset, and with `addr2line -i` on inline frames and lines.
// Exits 77 (skipped) saying why when the vmlinux, the recording, perf or gdb is not there.
#include <chrono>
#include <exception>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>

#include "lockscope/symbolizer.hpp"
#include "test_support.hpp"

using lockscope::symbolizer::Symbolizer;
using namespace lockscope::test;

namespace {

int skip(const std::string& why) {
  std::cout << "SKIP: " << why << "\n";
  return 77;
}

std::string hex(unsigned long long value) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%llx", value);
  return buf;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int run_vmlinux_test() {
  const std::string support = LOCKSCOPE_TEST_SUPPORT_DIR;
  for (const char* tool : {"perf", "gdb"})
    if (!have_tool(tool)) return skip(std::string(tool) + " is not installed; it is the oracle");
  const CommandResult vmlinux_path = run("'" + support + "/fetch-vmlinux'");
  if (vmlinux_path.status != 0) return skip("fetch-vmlinux could not provide the Debian vmlinux");
  const CommandResult recording_path = run("'" + support + "/shared-recording'");
  if (recording_path.status != 0) return skip("the shared recording is not there (see tests/support/shared-recording)");
  const std::string vmlinux = trim(vmlinux_path.out);
  const std::string recording = trim(recording_path.out);
  int failures = 0;

  // --- static lock addresses, from the probes' lock= argument ---
  const CommandResult trace = run("perf script -i '" + recording + "' -F trace 2>/dev/null");
  if (trace.status != 0) return skip("perf script cannot read " + recording);
  std::set<unsigned long long> locks;
  const std::regex lock_argument("lock=0x(ffffffff8[0-9a-f]+)");
  for (std::sregex_iterator it(trace.out.begin(), trace.out.end(), lock_argument), end; it != end; ++it)
    locks.insert(std::stoull((*it)[1].str(), nullptr, 16));
  if (locks.empty()) {
    std::cout << "FAIL: no static lock addresses in the recording\n";
    return 1;
  }
  const size_t recorded_locks = locks.size();
  // Plus the locks whose name several files define as statics (nm as the oracle), which gdb
  // evaluates only with the file qualifier.
  if (have_tool("nm")) {
    const CommandResult duplicates =
        run("nm '" + vmlinux +
            "' | awk '$2 ~ /^[bdBD]$/ && $3 ~ /_(lock|mutex|sem)$/ && $3 !~ /[.]/ "
            "{c[$3]++; a[$3] = a[$3] \" \" $1} END {for (n in c) if (c[n] > 1) print a[n]}'");
    std::istringstream words(duplicates.out);
    std::string word;
    while (words >> word) locks.insert(std::stoull(word, nullptr, 16));
  }
  // And every function-local static lock (gcc's ELF name `lock.N`, `..._mutex.N`): gdb reaches
  // them as `func::lock` only from the function's outermost block, and an empty static
  // (`__key`) can share a lock's address.
  size_t function_statics = 0;
  if (have_tool("nm")) {
    const CommandResult statics =
        run("nm '" + vmlinux + "' | awk '$2 ~ /^[bdBD]$/ && $3 ~ /(lock|mutex|sem)[.][0-9]+$/ {print $1}'");
    std::istringstream words(statics.out);
    std::string word;
    while (words >> word) {
      locks.insert(std::stoull(word, nullptr, 16));
      ++function_statics;
    }
  }
  // And a per-cpu variable (an offset into .data..percpu, never relocated): the run queue, whose
  // first member is its lock.
  unsigned long long runqueues = 0;
  if (have_tool("nm")) {
    const CommandResult nm = run("nm '" + vmlinux + "' | awk '$3 == \"runqueues\" {print $1}'");
    runqueues = std::strtoull(nm.out.c_str(), nullptr, 16);
    if (runqueues != 0) locks.insert(runqueues);
  }
  std::cout << "checking " << locks.size() << " static lock addresses: " << recorded_locks << " from the recording, "
            << function_statics << " function-local statics (lock.N), file-static locks with duplicate names"
            << (runqueues != 0 ? " and the per-cpu runqueues" : "") << "\n";

  auto started = std::chrono::steady_clock::now();
  auto symbolizer = Symbolizer::open(vmlinux);
  std::vector<lockscope::symbolizer::DataName> names;
  for (unsigned long long address : locks) names.push_back(symbolizer->name_data(address));
  std::cout << "named " << locks.size() << " static lock addresses in " << seconds_since(started) << " s\n";

  std::vector<std::string> queries;
  for (size_t i = 0; i < names.size(); ++i) {
    queries.push_back("info symbol " + hex(*std::next(locks.begin(), static_cast<long>(i))));
    queries.push_back("print/x (unsigned long)&(" + names[i].name + ")");
    queries.push_back("whatis " + names[i].name);
  }
  started = std::chrono::steady_clock::now();
  const auto answers = gdb_batch(vmlinux, queries, "");
  std::cout << "gdb answered " << queries.size() << " queries on the vmlinux in " << seconds_since(started) << " s\n";

  size_t symbol_agreed = 0, evaluated_agreed = 0, lock_typed = 0;
  size_t i = 0;
  for (unsigned long long address : locks) {
    const auto& named = names[i];
    const InfoSymbol info = parse_info_symbol(answers[i * 3]);
    unsigned long long evaluated = 0;
    const bool evaluates = parse_gdb_value(answers[i * 3 + 1], &evaluated) && evaluated == address;
    const std::string type = gdb_type(answers[i * 3 + 2]);
    const bool symbol_ok = info.found && without_static_suffix(named.symbol) == info.symbol &&
                           named.offset == info.offset && named.section == info.section &&
                           named.percpu == (info.section == ".data..percpu");
    symbol_agreed += symbol_ok;
    evaluated_agreed += evaluates;
    lock_typed += gdb_says_lock_type(type);
    if (!symbol_ok || !evaluates || !gdb_says_lock_type(type)) {
      std::cout << "DISAGREE " << hex(address) << ": named " << named.name << " = " << named.symbol << "+"
                << named.offset << "; gdb: " << answers[i * 3] << " | " << answers[i * 3 + 1] << " | "
                << answers[i * 3 + 2] << "\n";
    }
    ++i;
  }
  if (runqueues != 0 && !symbolizer->name_data(runqueues).percpu) {
    std::cout << "DISAGREE runqueues " << hex(runqueues) << " is not reported as per-cpu\n";
    ++failures;
  }
  std::cout << "locks: " << symbol_agreed << " of " << locks.size() << " agree with gdb info symbol; "
            << evaluated_agreed << " of " << locks.size() << " names evaluate in gdb to the address; " << lock_typed
            << " of " << locks.size() << " are lock-typed for gdb whatis\n";
  if (symbol_agreed != locks.size() || evaluated_agreed != locks.size() || lock_typed != locks.size()) ++failures;

  // --- every kernel frame of the recording, against perf's own symbolization with the vmlinux ---
  FILE* perf =
      popen(("perf script -i '" + recording + "' -k '" + vmlinux + "' -F ip,sym,symoff 2>/dev/null").c_str(), "r");
  if (perf == nullptr) return skip("cannot run perf script -k");
  std::map<unsigned long long, std::string> perf_names;
  size_t samples = 0;
  char line[4096];
  bool in_sample = false;
  started = std::chrono::steady_clock::now();
  while (fgets(line, sizeof line, perf) != nullptr) {
    std::istringstream fields(line);
    std::string address_text, symbol;
    if (!(fields >> address_text >> symbol)) {
      if (in_sample) ++samples;
      in_sample = false;
      continue;
    }
    in_sample = true;
    if (address_text.rfind("ffffffff", 0) != 0) continue;
    perf_names[std::stoull(address_text, nullptr, 16)] = symbol;
  }
  if (in_sample) ++samples;
  if (pclose(perf) != 0) {
    std::cout << "FAIL: perf script -k stopped with an error\n";
    ++failures;
  }
  std::cout << "perf script -k read " << samples << " samples in " << seconds_since(started) << " s\n";
  size_t frames_agreed = 0, perf_unknown = 0, with_lines = 0;
  started = std::chrono::steady_clock::now();
  for (const auto& [address, perf_name] : perf_names) {
    const auto where = symbolizer->name_code(address);
    if (perf_name == "[unknown]") {
      ++perf_unknown;
      continue;
    }
    if (where.found && where.name() == perf_name) {
      ++frames_agreed;
    } else {
      std::cout << "DISAGREE frame " << hex(address) << ": named " << (where.found ? where.name() : where.why_unnamed)
                << "; perf: " << perf_name << "\n";
    }
    with_lines += where.line > 0;
  }
  std::cout << "named " << perf_names.size() << " distinct kernel frames in " << seconds_since(started) << " s\n";
  std::cout << "frames: " << frames_agreed << " of " << perf_names.size() - perf_unknown
            << " agree with perf script -k vmlinux on symbol+offset (" << perf_unknown << " perf could not name); "
            << with_lines << " have a source line\n";
  if (perf_names.empty() || frames_agreed != perf_names.size() - perf_unknown) ++failures;
  // Which frames have a line (code from top-level asm such as arch_rethook_trampoline has none) is
  // checked against addr2line below.

  // --- inline frames and source lines of the same frames, against addr2line -i ---
  if (!have_tool("addr2line")) return skip("addr2line is not installed; it checks inline frames and lines");
  std::string addresses;
  // Frames perf could not name (return addresses just past a noreturn call) are left out: neither
  // perf nor we name them, while addr2line still finds their line.
  size_t compared = 0;
  for (const auto& [address, perf_name] : perf_names) {
    if (perf_name == "[unknown]") continue;
    addresses += " " + hex(address);
    ++compared;
  }
  started = std::chrono::steady_clock::now();
  const CommandResult oracle = run("addr2line -a -i -f -e '" + vmlinux + "'" + addresses);
  std::cout << "addr2line answered " << compared << " addresses in " << seconds_since(started) << " s\n";
  std::map<unsigned long long, std::vector<std::pair<std::string, std::string>>> chains;  // function, file:line
  {
    std::istringstream lines(oracle.out);
    std::string function, location;
    unsigned long long current = 0;
    while (std::getline(lines, function)) {
      if (function.rfind("0x", 0) == 0) {
        current = std::stoull(function, nullptr, 16);
        continue;
      }
      if (!std::getline(lines, location)) break;
      // addr2line's "no line" is ??:? (or ??:0); ours is an empty file and line 0.
      std::string where = location.substr(0, location.find(' '));
      if (where == "??:?" || where == "??:0") where = ":0";
      chains[current].push_back({function, where});
    }
  }
  size_t chains_agreed = 0;
  for (const auto& [address, expected] : chains) {
    const auto where = symbolizer->name_code(address);
    // Ours: inlines innermost first, then the outer function; addr2line's order is the same.
    std::vector<std::pair<std::string, std::string>> ours;
    for (const auto& frame : where.inlines)
      ours.push_back({frame.function, frame.file + ":" + std::to_string(frame.line)});
    ours.push_back({"", where.file + ":" + std::to_string(where.line)});
    bool same = ours.size() == expected.size();
    for (size_t k = 0; same && k < ours.size(); ++k) {
      // addr2line prints the build directory's view of the path; ours is relative to the source tree.
      const std::string& theirs = expected[k].second;
      const std::string& mine = ours[k].second;
      same = theirs.size() >= mine.size() && theirs.compare(theirs.size() - mine.size(), mine.size(), mine) == 0 &&
             (k + 1 == ours.size() || ours[k].first == expected[k].first);
    }
    chains_agreed += same;
    if (!same) {
      std::cout << "DISAGREE inlines " << hex(address) << ": ours";
      for (const auto& [f, l] : ours) std::cout << " " << f << "@" << l;
      std::cout << "; addr2line";
      for (const auto& [f, l] : expected) std::cout << " " << f << "@" << l;
      std::cout << "\n";
    }
  }
  std::cout << "inlines and lines: " << chains_agreed << " of " << compared << " frames agree with addr2line -i\n";
  if (chains_agreed != compared) ++failures;

    // --- the command with the recording: relocation and build-id come from the perf.data ---
#ifdef LOCKSCOPE_LOCKANALYZE
  const CommandResult command =
      run(std::string("'") + LOCKSCOPE_LOCKANALYZE + "' symbolize --vmlinux '" + vmlinux + "' --perf-data '" +
          recording + "' --format jsonl " + hex(*locks.rbegin()) + " 2>&1");
  const auto expected = symbolizer->name_data(*locks.rbegin()).name;
  const bool command_ok = command.status == 0 &&
                          command.out.find("\"name\":\"" + expected + "\"") != std::string::npos &&
                          command.out.find("warning") == std::string::npos;
  std::cout << "lockanalyze symbolize --perf-data: "
            << (command_ok ? "named " + expected + " without warnings" : command.out) << "\n";
  if (!command_ok) ++failures;
#else
  std::cout << "lockanalyze is not built in this tree; its --perf-data path was not checked\n";
#endif
  return failures ? 1 : 0;
}

// A failure is one line and status 1, not std::terminate.
int main() {
  try {
    return run_vmlinux_test();
  } catch (const std::exception& error) {
    std::cout << "vmlinux_test: " << error.what() << std::endl;
  }
  return 1;
}
