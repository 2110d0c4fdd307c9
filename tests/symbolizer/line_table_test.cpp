// The line-program reader (symbolizer/line_table.*) against addr2line, which reads line programs
// with its own code (binutils' BFD), and gdb where addr2line names another file: every address of every function of the
// fixtures compiled as DWARF 4 and as DWARF 5, and every address of a sample of the Debian vmlinux's functions (that
// part is skipped, saying why, when the vmlinux is not there). Exits 77 when gcc, addr2line or gdb is missing.
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <gelf.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "line_table.hpp"
#include "test_support.hpp"

using lockscope::symbolizer::LineRow;
using lockscope::symbolizer::LineSections;
using lockscope::symbolizer::LineTable;
using namespace lockscope::test;

namespace {

std::string hex(unsigned long long value) {
  char text[32];
  snprintf(text, sizeof text, "0x%llx", value);
  return text;
}

std::span<const unsigned char> section_bytes(Elf* elf, std::string_view wanted) {
  size_t names = 0;
  if (elf_getshdrstrndx(elf, &names) != 0) return {};
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf, scn)) != nullptr) {
    GElf_Shdr shdr;
    const char* name = gelf_getshdr(scn, &shdr) != nullptr ? elf_strptr(elf, names, shdr.sh_name) : nullptr;
    if (name == nullptr || wanted != name) continue;
    const Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr || data->d_buf == nullptr) return {};
    return {static_cast<const unsigned char*>(data->d_buf), data->d_size};
  }
  return {};
}

// The first `per_function` addresses of every `every`-th text symbol nm lists with a size.
std::vector<unsigned long long> function_addresses(const std::string& binary, size_t every, size_t per_function) {
  const CommandResult nm = run("nm -S '" + binary + "'");
  std::vector<unsigned long long> out;
  std::istringstream lines(nm.out);
  std::string line;
  size_t functions = 0;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string address, size, type, name;
    if (!(fields >> address >> size >> type >> name) || (type != "T" && type != "t")) continue;
    if (functions++ % every != 0) continue;
    const unsigned long long start = std::stoull(address, nullptr, 16);
    const unsigned long long length = std::stoull(size, nullptr, 16);
    for (unsigned long long i = 0; i < length && i < per_function; ++i) out.push_back(start + i);
  }
  return out;
}

// Lexically removes "." and "dir/.." so that paths spelled from different directories compare.
std::string normalized(const std::string& path) {
  std::vector<std::string> parts;
  std::istringstream in(path);
  std::string part;
  while (std::getline(in, part, '/')) {
    if (part == ".." && !parts.empty() && parts.back() != "..")
      parts.pop_back();
    else if (!part.empty() && part != ".")
      parts.push_back(part);
  }
  std::string out = !path.empty() && path[0] == '/' ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "/" : "") + parts[i];
  return out;
}

// The same file, one path possibly relative to a directory the other names (addr2line prints the
// build directory's view, the line table may hold it relative or absolute).
bool same_file(const std::string& ours, const std::string& theirs) {
  const std::string a = normalized(ours), b = normalized(theirs);
  auto ends_with = [](const std::string& path, const std::string& tail) {
    return path == tail ||
           (path.size() > tail.size() && path.compare(path.size() - tail.size(), tail.size(), tail) == 0 &&
            path[path.size() - tail.size() - 1] == '/');
  };
  return ends_with(a, b) || ends_with(b, a);
}

struct Where {
  std::string file;  // empty: no line
  int line = 0;
};

// addr2line's answer per address; no line for its ??:0 and ??:?.
std::map<unsigned long long, Where> addr2line(const std::string& binary,
                                              const std::vector<unsigned long long>& addresses,
                                              const std::string& scratch) {
  // On stdin, in one run: addr2line reads the vmlinux's DWARF once, and a command line has a limit.
  const std::string list = scratch + "/addresses";
  std::string text;
  for (unsigned long long address : addresses) text += hex(address) + "\n";
  write_file(list, text);
  const CommandResult oracle = run("addr2line -a -e '" + binary + "' < '" + list + "'");
  std::remove(list.c_str());
  std::map<unsigned long long, Where> out;
  std::istringstream lines(oracle.out);
  std::string address, location;
  while (std::getline(lines, address) && std::getline(lines, location)) {
    location = location.substr(0, location.find(" (discriminator"));
    const size_t colon = location.rfind(':');
    Where where;
    if (colon != std::string::npos && location.compare(0, colon, "??") != 0) {
      where.file = location.substr(0, colon);
      where.line = std::atoi(location.c_str() + colon + 1);
    }
    out[std::stoull(address, nullptr, 16)] = where;
  }
  return out;
}

// gdb's file for `info line *ADDRESS`: 'Line 260 of "lib/x.h" starts at address ...'.
std::string gdb_file(const std::string& answer) {
  const size_t open = answer.find(" of \"");
  const size_t close = open == std::string::npos ? open : answer.find('"', open + 5);
  return close == std::string::npos ? "" : answer.substr(open + 5, close - open - 5);
}

// Every address against addr2line; returns the number that disagree (printing the first few).
// addr2line names the function's own file instead of the header for some functions defined in a
// header (the kernel's trace events, zstd's BIT_initDStream), where objdump's and gdb's line tables
// name the header; the file of an address addr2line puts elsewhere on the same line is asked of gdb.
size_t compare_with_oracles(const std::string& binary, const std::vector<unsigned long long>& addresses,
                            const std::string& scratch) {
  const int fd = open(binary.c_str(), O_RDONLY | O_CLOEXEC);
  Elf* elf = fd >= 0 ? elf_begin(fd, ELF_C_READ_MMAP, nullptr) : nullptr;
  Dwarf* dwarf = elf != nullptr ? dwarf_begin_elf(elf, DWARF_C_READ, nullptr) : nullptr;
  if (dwarf == nullptr) {
    std::cout << "FAIL: cannot read the DWARF of " << binary << "\n";
    return 1;
  }
  const LineSections sections{section_bytes(elf, ".debug_line"), section_bytes(elf, ".debug_line_str"),
                              section_bytes(elf, ".debug_str")};
  std::map<Dwarf_Off, std::optional<LineTable>> tables;  // by unit
  std::map<unsigned long long, Where> ours;
  size_t disagreed = 0, with_lines = 0;
  for (unsigned long long address : addresses) {
    Where& where = ours[address];
    Dwarf_Die cu;
    if (dwarf_addrdie(dwarf, address, &cu) == nullptr) continue;
    auto it = tables.find(dwarf_dieoffset(&cu));
    if (it == tables.end()) {
      Dwarf_Attribute attr;
      Dwarf_Word offset = 0;
      Dwarf_Die unit;
      uint8_t address_size = 0, offset_size = 0;
      std::optional<LineTable> table;
      if (dwarf_formudata(dwarf_attr(&cu, DW_AT_stmt_list, &attr), &offset) == 0 &&
          dwarf_diecu(&cu, &unit, &address_size, &offset_size) != nullptr)
        table =
            LineTable::read(sections, offset, dwarf_formstring(dwarf_attr(&cu, DW_AT_comp_dir, &attr)), address_size);
      if (!table) std::cout << "FAIL: unit at " << hex(dwarf_dieoffset(&cu)) << ": its line table was not read\n";
      disagreed += !table;
      it = tables.emplace(dwarf_dieoffset(&cu), std::move(table)).first;
    }
    const std::optional<LineRow> row = it->second ? it->second->row_at(address) : std::nullopt;
    if (row && row->file < it->second->files().size()) where = {it->second->files()[row->file], row->line};
    with_lines += !where.file.empty();
  }
  dwarf_end(dwarf);
  elf_end(elf);
  close(fd);

  const auto expected = addr2line(binary, addresses, scratch);
  std::vector<unsigned long long> ask_gdb;
  auto report = [&](unsigned long long address, const std::string& theirs) {
    if (++disagreed <= 10) {
      const Where& mine = ours[address];
      std::cout << "DISAGREE " << hex(address) << ": ours " << mine.file << ":" << mine.line << "; " << theirs << "\n";
    }
  };
  for (unsigned long long address : addresses) {
    const Where& mine = ours[address];
    const auto theirs = expected.find(address);
    if (theirs == expected.end()) {
      report(address, "addr2line gave no answer");
    } else if (mine.file.empty() != theirs->second.file.empty() || mine.line != theirs->second.line) {
      report(address, "addr2line: " + theirs->second.file + ":" + std::to_string(theirs->second.line));
    } else if (!mine.file.empty() && !same_file(mine.file, theirs->second.file)) {
      ask_gdb.push_back(address);
    }
  }
  if (!ask_gdb.empty()) {
    std::vector<std::string> queries;
    for (unsigned long long address : ask_gdb) queries.push_back("info line *" + hex(address));
    const auto answers = gdb_batch(binary, queries, scratch);
    for (size_t i = 0; i < ask_gdb.size(); ++i)
      if (!same_file(ours[ask_gdb[i]].file, gdb_file(answers[i]))) report(ask_gdb[i], "gdb: " + answers[i]);
  }
  std::cout << binary << ": " << addresses.size() - disagreed << " of " << addresses.size()
            << " addresses agree with addr2line, or on the file with gdb (" << ask_gdb.size() << " asked); "
            << with_lines << " have a line, in " << tables.size() << " units\n";
  if (with_lines == 0) ++disagreed;  // a test that found no line checked nothing
  return disagreed;
}

int run_test() {
  for (const char* tool : {"gcc", "nm", "addr2line", "gdb"}) {
    if (!have_tool(tool)) {
      std::cout << "SKIP: " << tool << " is not installed; it builds or checks the fixtures\n";
      return 77;
    }
  }
  elf_version(EV_CURRENT);
  char scratch[] = "/tmp/lockscope-line-table-XXXXXX";
  if (mkdtemp(scratch) == nullptr) {
    std::cout << "FAIL: cannot make a scratch directory\n";
    return 1;
  }
  size_t failures = 0;
  const std::string dir = LOCKSCOPE_FIXTURE_DIR;
  // -O2 inlines, so rows of several files interleave; DWARF 4 and 5 differ in the header's tables.
  for (const char* version : {"4", "5"}) {
    const std::string binary = std::string(scratch) + "/fixture-dwarf" + version;
    const std::string compile = std::string("gcc -g -gdwarf-") + version + " -O2 -no-pie -I'" + dir + "' '" + dir +
                                "/globals.c' '" + dir + "/other.c' '" + dir + "/main.c' -o '" + binary + "'";
    if (run(compile).status != 0) {
      std::cout << "FAIL: cannot compile the fixture: " << compile << "\n";
      ++failures;
      continue;
    }
    failures += compare_with_oracles(binary, function_addresses(binary, 1, SIZE_MAX), scratch);
  }

  const CommandResult vmlinux = run("'" + std::string(LOCKSCOPE_TEST_SUPPORT_DIR) + "/fetch-vmlinux'");
  if (vmlinux.status != 0) {
    std::cout << "the Debian vmlinux is not there (tests/support/fetch-vmlinux failed): only the fixtures were "
                 "checked\n";
  } else {
    // The first 64 addresses of one function in 40: ~1500 functions in most of the kernel's units.
    failures += compare_with_oracles(trim(vmlinux.out), function_addresses(trim(vmlinux.out), 40, 64), scratch);
  }
  run("rm -rf '" + std::string(scratch) + "'");
  return failures == 0 ? 0 : 1;
}

}  // namespace

// A failure is one line and status 1, not std::terminate.
int main() {
  try {
    return run_test();
  } catch (const std::exception& error) {
    std::cout << "line_table_test: " << error.what() << std::endl;
  }
  return 1;
}
