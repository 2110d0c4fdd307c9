// Helpers for the symbolizer tests: running tools (gcc, gdb, nm, addr2line, perf) and reading their
// answers. gdb runs once per batch of queries; each query's output is cut out between markers.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace lockscope::test {

struct CommandResult {
  int status = -1;  // exit status, -1 when it did not exit normally
  std::string out;
};

// Runs a shell command and returns its standard output (standard error goes to the test log).
inline CommandResult run(const std::string& command) {
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  std::array<char, 65536> buffer;
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.out.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline bool have_tool(const std::string& name) { return run("command -v " + name + " >/dev/null 2>&1").status == 0; }

inline std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  size_t start = 0;
  while (start < s.size() && s[start] == ' ') ++start;
  return s.substr(start);
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs every command in one gdb process on `binary` and returns each command's output (stdout and
// stderr, trimmed). One process matters: gdb needs seconds to read a vmlinux. Commands go in as -ex
// arguments because gdb abandons a sourced script at its first error, and a failing query is an
// answer here.
inline std::vector<std::string> gdb_batch(const std::string& binary, const std::vector<std::string>& commands,
                                          const std::string& /*scratch_dir*/) {
  std::string command_line = "gdb -batch -nx";
  for (size_t i = 0; i < commands.size(); ++i) {
    command_line += " -ex " + shell_quote("echo @@query " + std::to_string(i) + "\\n");
    command_line += " -ex " + shell_quote(commands[i]);
  }
  command_line += " -ex " + shell_quote("echo @@query end\\n");
  const CommandResult result = run(command_line + " " + shell_quote(binary) + " 2>&1");
  std::vector<std::string> answers(commands.size());
  long current = -1;
  size_t pos = 0;
  while (pos < result.out.size()) {
    size_t end = result.out.find('\n', pos);
    if (end == std::string::npos) end = result.out.size();
    const std::string line = result.out.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind("@@query ", 0) == 0) {
      const std::string which = line.substr(8);
      current = which == "end" ? -1 : std::stol(which);
      continue;
    }
    if (current >= 0 && static_cast<size_t>(current) < answers.size()) answers[current] += line + "\n";
  }
  for (std::string& answer : answers) answer = trim(answer);
  return answers;
}

// "$3 = 0x404058" -> 0x404058; returns false for gdb errors ("No symbol ...").
inline bool parse_gdb_value(const std::string& answer, unsigned long long* value) {
  const size_t eq = answer.find("= ");
  if (answer.rfind('$', 0) != 0 || eq == std::string::npos) return false;
  char* end = nullptr;
  *value = std::strtoull(answer.c_str() + eq + 2, &end, 0);
  return end != answer.c_str() + eq + 2;
}

// "type = spinlock_t" -> "spinlock_t"
inline std::string gdb_type(const std::string& answer) {
  return answer.rfind("type = ", 0) == 0 ? answer.substr(7) : "";
}

// gdb's `info symbol`: "rcu_state + 333528 in section .data" or "lock in section .bss".
struct InfoSymbol {
  bool found = false;
  std::string symbol;
  unsigned long long offset = 0;
  std::string section;
};

inline InfoSymbol parse_info_symbol(const std::string& answer) {
  InfoSymbol out;
  const size_t in_section = answer.find(" in section ");
  if (in_section == std::string::npos) return out;
  out.found = true;
  out.section = answer.substr(in_section + 12);
  const std::string head = answer.substr(0, in_section);
  const size_t plus = head.find(" + ");
  out.symbol = head.substr(0, plus);
  if (plus != std::string::npos) out.offset = std::strtoull(head.c_str() + plus + 3, nullptr, 10);
  return out;
}

// gdb shows `lock.1` (a function-local static's ELF symbol) as `lock`.
inline std::string without_static_suffix(const std::string& name) {
  size_t dot = name.rfind('.');
  if (dot == std::string::npos || dot + 1 == name.size()) return name;
  for (size_t i = dot + 1; i < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9') return name;
  return name.substr(0, dot);
}

// The kernel's lock types as gdb's `whatis` prints them.
inline bool gdb_says_lock_type(const std::string& type) {
  static const char* const kLockTypes[] = {
      "spinlock_t",      "raw_spinlock_t",      "rwlock_t",         "arch_spinlock_t", "seqlock_t",
      "struct mutex",    "struct rw_semaphore", "struct semaphore", "struct rt_mutex", "struct percpu_rw_semaphore",
      "struct spinlock", "struct raw_spinlock", "local_lock_t"};
  for (const char* lock : kLockTypes)
    if (type == lock) return true;
  return false;
}

}  // namespace lockscope::test
