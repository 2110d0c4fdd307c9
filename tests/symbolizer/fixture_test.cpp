// The symbolizer against small ELF files compiled here from fixtures/symbolizer/*.c, with gdb,
// addr2line and nm as the oracles: every name it prints must evaluate in gdb to the address it names,
// and a lock must be named as the lock (gdb's `whatis` says a lock type), not its insides.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "example_recordings.hpp"
#include "lockscope/error.hpp"
#include "lockscope/symbolizer.hpp"
#include "test_support.hpp"

using lockscope::symbolizer::Symbolizer;
using namespace lockscope::test;

namespace {

std::string g_scratch;  // a fresh directory for this run
std::string g_fixture;  // the fixture ELF with DWARF
std::string g_cli;      // the symbolize command's test driver
const char* const kFixtureDir = LOCKSCOPE_FIXTURE_DIR;

unsigned long long gdb_address_of(const std::string& expression) {
  const auto answers = gdb_batch(g_fixture, {"print/x (unsigned long)&(" + expression + ")"}, g_scratch);
  unsigned long long value = 0;
  INFO("gdb: " << answers[0]);
  REQUIRE(parse_gdb_value(answers[0], &value));
  return value;
}

// The outermost-lock rule: the expression's parent (one member or index up) must not be a lock that
// starts at the same address, or the name went too deep.
std::string parent_of(const std::string& name) {
  const size_t cut = name.find_last_of(".[");
  const size_t qualifier = name.rfind("::");
  if (cut == std::string::npos || (qualifier != std::string::npos && cut < qualifier)) return "";
  return name.substr(0, cut);
}

struct Checked {
  std::string target;
  unsigned long long address = 0;
  lockscope::symbolizer::DataName named;
};

// Names every target's address, then asks gdb, in one run, what the names evaluate to.
void check_names(const std::vector<std::string>& targets, bool expect_locks) {
  // "nm:NAME" targets have no gdb expression (a static in an inlined-only function): nm gives their
  // address, as `print/x` would.
  std::vector<std::string> address_queries;
  for (const auto& target : targets) {
    if (target.rfind("nm:", 0) == 0) {
      const CommandResult nm =
          run("nm '" + g_fixture + "' | awk '$3 ~ /^" + target.substr(3) + "(\\.[0-9]+)?$/ {print $1}'");
      address_queries.push_back("print/x 0x" + trim(nm.out));
    } else {
      address_queries.push_back("print/x (unsigned long)&(" + target + ")");
    }
  }
  const auto addresses = gdb_batch(g_fixture, address_queries, g_scratch);
  auto symbolizer = Symbolizer::open(g_fixture);
  std::vector<Checked> checked;
  std::vector<std::string> queries;
  for (size_t i = 0; i < targets.size(); ++i) {
    Checked c;
    c.target = targets[i];
    INFO("target " << targets[i] << " gdb: " << addresses[i]);
    REQUIRE(parse_gdb_value(addresses[i], &c.address));
    c.named = symbolizer->name_data(c.address);
    REQUIRE(c.named.found);
    const std::string name = c.named.name;
    const std::string parent = parent_of(name);
    char hex[32];
    snprintf(hex, sizeof hex, "0x%llx", c.address);
    queries.push_back("print/x (unsigned long)&(" + name + ")");
    queries.push_back("whatis " + name);
    queries.push_back("info symbol " + std::string(hex));
    queries.push_back(parent.empty() ? "echo no parent\\n" : "print/x (unsigned long)&(" + parent + ")");
    queries.push_back(parent.empty() ? "echo no parent\\n" : "whatis " + parent);
    checked.push_back(c);
  }
  const auto answers = gdb_batch(g_fixture, queries, g_scratch);
  for (size_t i = 0; i < checked.size(); ++i) {
    const Checked& c = checked[i];
    const std::string* a = &answers[i * 5];
    INFO("target " << c.target << " named " << c.named.name << " symbol " << c.named.symbol << "+" << c.named.offset);
    INFO("gdb: " << a[0] << " | " << a[1] << " | " << a[2] << " | " << a[3] << " | " << a[4]);
    unsigned long long evaluated = 0;
    REQUIRE(parse_gdb_value(a[0], &evaluated));
    CHECK(evaluated == c.address);
    const InfoSymbol info = parse_info_symbol(a[2]);
    REQUIRE(info.found);
    CHECK(without_static_suffix(c.named.symbol) == info.symbol);
    CHECK(c.named.offset == info.offset);
    CHECK(c.named.section == info.section);
    CHECK(c.named.percpu == (info.section == ".data..percpu"));
    if (expect_locks) {
      // gdb's whatis strips one typedef per call; a typedef over a lock type shows the lock one down.
      std::string type = gdb_type(a[1]);
      if (!gdb_says_lock_type(type)) type = gdb_type(gdb_batch(g_fixture, {"whatis " + type}, g_scratch)[0]);
      CHECK(gdb_says_lock_type(type));
      CHECK(c.named.is_lock);
      unsigned long long parent_address = 0;
      if (parse_gdb_value(a[3], &parent_address) && parent_address == c.address) {
        CHECK_FALSE(gdb_says_lock_type(gdb_type(a[4])));
      }
    }
  }
}

}  // namespace

TEST_CASE("lock addresses are named by the outermost lock, as gdb evaluates them") {
  check_names(
      {
          "rcu_state_fixture",                          // offset 0: node[0].lock, not the variable
          "rcu_state_fixture.node[1].lock",             // in an array of structs
          "rcu_state_fixture.node[2].lock.raw_lock",    // the lock's insides name the lock
          "rcu_state_fixture.gp_wq",                    // a wait queue names its lock
          "rcu_state_fixture.barrier_mutex",            // a mutex at its start
          "rcu_state_fixture.barrier_mutex.wait_lock",  // a lock inside a lock, not at its start
          "rcu_state_fixture.u.ofl_lock",               // through a union
          "rcu_state_fixture.rwsem",                    // struct rw_semaphore
          "rcu_state_fixture.rwsem.wait_lock",
          "fixture_wait",  // khugepaged_wait shape
          "fixture_mutex",
          "fixture_rwlock",
          "fixture_typedef_lock",  // a typedef over spinlock_t
          "'globals.c'::lock",     // a file static whose name is not unique
          "'other.c'::lock",
          "globals_helper::lock",  // a function-local static (ELF lock.0)
          "other_locker::other_local_lock",
          "nm:inlined_lock",           // in an inlined-only function: spelled by type and address
          "nm:block_lock",             // in an inner { } block, which gdb's func:: does not search
          "keyed_locker::keyed_lock",  // shares its address with an empty static of key_user
          "noop_backing_dev_info_fixture.wb.list_lock",
          "shadow_nodes_fixture.xa",  // shadow_nodes.xa.xa_lock shape: offset 32
          "shadow_nodes_fixture.xa.xa_lock",
          "cyclic_root.lock",        // a self-referential struct
          "percpu_counter_fixture",  // .data..percpu linked at 0
      },
      true);
}

TEST_CASE("addresses without a lock are named by the innermost member") {
  check_names(
      {"not_a_lock[2]", "rcu_state_fixture.matrix[1][2]", "rcu_state_fixture.tail", "rcu_state_fixture.node[1].gp_seq",
       "cyclic_root.children[1]", "percpu_first_fixture", "shadow_nodes_fixture"},
      false);
}

TEST_CASE("addresses in padding or inside a member are named as a char gdb can take the address of") {
  check_names({"*((char *)&rcu_state_fixture + 4)",           // padding after node[0].lock
               "*((char *)&rcu_state_fixture.node[2] + 20)",  // inside node[2].parent, a pointer
               "*((char *)&not_a_lock[1] + 3)",               // inside a long
               "*((char *)&fixture_mutex + 2)",               // inside a lock, not at its start
               "*((char *)&'globals.c'::lock + 2)",           // a file static with a qualifier
               "*((char *)&percpu_counter_fixture + 4)"},     // per-cpu, padding after the lock
              false);
  auto symbolizer = Symbolizer::open(g_fixture);
  CHECK(symbolizer->name_data(gdb_address_of("*((char *)&rcu_state_fixture + 4)")).name ==
        "*((char *)&rcu_state_fixture.node[0] + 0x4)");
}

TEST_CASE("code addresses agree with addr2line on function, inlines and lines") {
  // Every address of main(), which has an always-inline call, against addr2line -i -f.
  const CommandResult nm = run("nm -S '" + g_fixture + "' | awk '$4 == \"main\" {print $1, $2}'");
  REQUIRE(nm.status == 0);
  const unsigned long long start = std::strtoull(nm.out.c_str(), nullptr, 16);
  const unsigned long long size = std::strtoull(nm.out.c_str() + nm.out.find(' ') + 1, nullptr, 16);
  REQUIRE(size > 0);
  std::string addresses;
  for (unsigned long long a = start; a < start + size; ++a) {
    char hex[32];
    snprintf(hex, sizeof hex, " 0x%llx", a);
    addresses += hex;
  }
  // -a prints each address before its frames, so frames can be grouped per address.
  const CommandResult oracle = run("addr2line -a -i -f -e '" + g_fixture + "'" + addresses);
  REQUIRE(oracle.status == 0);
  std::map<unsigned long long, std::vector<std::pair<std::string, std::string>>> frames;  // function, file:line
  unsigned long long current = 0;
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < oracle.out.size()) {
    size_t end = oracle.out.find('\n', pos);
    lines.push_back(oracle.out.substr(pos, end - pos));
    pos = end == std::string::npos ? oracle.out.size() : end + 1;
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("0x", 0) == 0) {
      current = std::strtoull(lines[i].c_str(), nullptr, 16);
      continue;
    }
    if (i + 1 < lines.size()) {
      frames[current].push_back({lines[i], lines[i + 1]});
      ++i;
    }
  }
  auto symbolizer = Symbolizer::open(g_fixture);
  size_t with_inlines = 0;
  for (const auto& [address, expected] : frames) {
    const auto where = symbolizer->name_code(address);
    INFO("address 0x" << std::hex << address << std::dec << " named " << where.name());
    REQUIRE(where.found);
    CHECK(where.function == "main");
    CHECK(where.offset == address - start);
    // addr2line: innermost first, the outer function last.
    REQUIRE(expected.size() == where.inlines.size() + 1);
    for (size_t k = 0; k < where.inlines.size(); ++k) {
      CHECK(where.inlines[k].function == expected[k].first);
      CHECK(expected[k].second.find(":" + std::to_string(where.inlines[k].line)) != std::string::npos);
    }
    CHECK(expected.back().first == "main");
    const std::string& outer = expected.back().second;
    CHECK(outer.substr(0, outer.find(' ')) == where.file + ":" + std::to_string(where.line));
    if (!where.inlines.empty()) ++with_inlines;
  }
  CHECK(with_inlines > 0);  // the fixture did inline something, so the inline path was exercised
}

TEST_CASE("the build-id is the ELF note's, and a different one is reported naming both") {
  const CommandResult readelf = run("readelf -n '" + g_fixture + "' | awk '/Build ID:/ {print $3}'");
  const std::string expected = trim(readelf.out);
  REQUIRE(!expected.empty());
  auto symbolizer = Symbolizer::open(g_fixture);
  CHECK(symbolizer->build_id() == expected);
  CHECK(symbolizer->check_build_id(expected));
  CHECK(symbolizer->warnings().empty());
  CHECK_FALSE(symbolizer->check_build_id("00112233"));
  REQUIRE(symbolizer->warnings().size() == 1);
  CHECK(symbolizer->warnings()[0].find("00112233") != std::string::npos);
  CHECK(symbolizer->warnings()[0].find(expected) != std::string::npos);
}

// The command takes its symbols as the report does (cli/kernel_symbols.cpp): another build's
// vmlinux names every address wrongly and plausibly, so it is refused unless forced.
TEST_CASE("symbolize --perf-data refuses a vmlinux of another build unless --force-vmlinux") {
  const std::string recording =
      lockscope::testing::write_temp_file(lockscope::testing::example_lock_recording().file_mode());
  const std::string recorded_id = "eb4fbcd0112233445566778899aabbccddeeff00";  // example_lock_recording's
  const std::string ours = trim(run("readelf -n '" + g_fixture + "' | awk '/Build ID:/ {print $3}'").out);
  REQUIRE(!ours.empty());
  std::ostringstream lock;
  lock << "0x" << std::hex << gdb_address_of("fixture_mutex");
  const std::string base =
      "'" + g_cli + "' symbolize --vmlinux '" + g_fixture + "' --perf-data '" + recording + "' " + lock.str();
  const CommandResult refused = run(base + " 2>&1");
  CHECK(refused.status == 1);
  CHECK(refused.out.find("is not the recorded kernel's vmlinux: its build-id differs from the recording's " +
                         recorded_id) != std::string::npos);
  CHECK(refused.out.find("--force-vmlinux") != std::string::npos);

  const CommandResult forced = run(base + " --force-vmlinux 2>&1");
  INFO(forced.out);
  CHECK(forced.status == 0);
  CHECK(forced.out.find(recorded_id + " but " + g_fixture + " has " + ours) != std::string::npos);
  CHECK(forced.out.find(" fixture_mutex ") != std::string::npos);
}

TEST_CASE("the relocation moves every address except per-cpu offsets") {
  auto symbolizer = Symbolizer::open(g_fixture);
  const unsigned long long lock = gdb_address_of("fixture_mutex");
  const unsigned long long percpu = gdb_address_of("percpu_counter_fixture");
  const auto plain = symbolizer->name_data(lock);
  symbolizer->set_relocation(0x20000000);
  CHECK(symbolizer->name_data(lock + 0x20000000).name == plain.name);
  CHECK_FALSE(symbolizer->name_data(lock).found);
  CHECK(symbolizer->name_data(percpu).percpu);
  CHECK(symbolizer->name_data(percpu).name == "percpu_counter_fixture.lock");
}

TEST_CASE("a CPU's copy of a per-cpu variable is named when the per-cpu offsets are known") {
  auto symbolizer = Symbolizer::open(g_fixture);
  const unsigned long long offset = gdb_address_of("percpu_counter_fixture");
  const unsigned long long cpu1_area = 0xff1100007cf00000ULL;
  CHECK_FALSE(symbolizer->name_data(cpu1_area + offset).found);  // unknown areas: no guess
  symbolizer->set_percpu_offsets({0xff1100007ce00000ULL, cpu1_area});
  const auto named = symbolizer->name_data(cpu1_area + offset);
  CHECK(named.found);
  CHECK(named.percpu);
  CHECK(named.cpu == 1);
  CHECK(named.name == symbolizer->name_data(offset).name);
}

TEST_CASE("what nothing names is said to be unnamed, with a reason") {
  auto symbolizer = Symbolizer::open(g_fixture);
  const auto heap = symbolizer->name_data(0xff11000005190e50ULL);
  CHECK_FALSE(heap.found);
  CHECK_FALSE(heap.why_unnamed.empty());
  CHECK(heap.name.empty());
  CHECK_FALSE(symbolizer->name_code(0xff11000005190e50ULL).found);
}

namespace {
std::string error_of(const std::string& path) {
  try {
    Symbolizer::open(path);
  } catch (const lockscope::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("bad vmlinux files give one clear line, never a crash") {
  const std::string text = g_scratch + "/not-elf";
  write_file(text, "this is not an ELF file\n");
  const std::string truncated = g_scratch + "/truncated";
  REQUIRE(run("head -c 6000 '" + g_fixture + "' > '" + truncated + "'").status == 0);
  const std::string empty = g_scratch + "/empty";
  write_file(empty, "");
  const std::string stripped = g_scratch + "/stripped";
  REQUIRE(run("strip -s -o '" + stripped + "' '" + g_fixture + "'").status == 0);
  for (const auto& [path, words] :
       std::vector<std::pair<std::string, std::string>>{{text, "not an ELF file"},
                                                        {truncated, "truncated"},
                                                        {empty, "not an ELF file"},
                                                        {stripped, "no symbol table"},
                                                        {g_scratch + "/does-not-exist", "cannot open"},
                                                        {g_scratch, "not a regular file"}}) {
    const std::string message = error_of(path);
    INFO(path << ": " << message);
    CHECK(message.find(words) != std::string::npos);
    CHECK(message.find(path) != std::string::npos);
    CHECK(message.find('\n') == std::string::npos);
  }
}

TEST_CASE("a vmlinux cut short anywhere gives one line naming the file and where, never a crash") {
  // An interrupted copy or download: cut inside the ELF header, the program headers, the sections,
  // the DWARF and the section header table at the end.
  const CommandResult size_text = run("stat -c %s '" + g_fixture + "'");
  const long size = std::stol(size_text.out);
  for (long cut : {1L, 4L, 16L, 52L, 63L, 64L, 65L, 200L, 1000L, 6000L, size / 3, size / 2, size - 100, size - 1}) {
    const std::string truncated = g_scratch + "/cut-" + std::to_string(cut);
    REQUIRE(run("head -c " + std::to_string(cut) + " '" + g_fixture + "' > '" + truncated + "'").status == 0);
    const std::string message = error_of(truncated);
    INFO("cut at " << cut << ": " << message);
    CHECK(message.find(truncated + ": ") == 0);
    CHECK(message.find('\n') == std::string::npos);
    // Past the magic, the message says where (a byte offset) and what was expected there.
    if (cut >= 4) CHECK(message.find("offset ") != std::string::npos);
    CHECK((message.find("truncated") != std::string::npos || message.find("not an ELF file") != std::string::npos ||
           message.find("not a readable ELF file") != std::string::npos));
  }
}

TEST_CASE("garbage DWARF falls back to the ELF symbols instead of crashing") {
  // The section headers are intact but .debug_info and .debug_abbrev hold noise (the same sizes):
  // every symbol is still named from the ELF symbol table, and nothing crashes or hangs.
  const std::string garbage = g_scratch + "/garbage-dwarf";
  std::string commands = "cp '" + g_fixture + "' '" + garbage + "'";
  for (const char* section : {".debug_info", ".debug_abbrev"}) {
    const std::string noise = g_scratch + "/noise" + section;
    const CommandResult size =
        run("readelf -S -W '" + g_fixture + "' | awk '$2 == \"" + std::string(section) + "\" {print $6}'");
    REQUIRE(!trim(size.out).empty());
    std::string bytes(std::stoul(trim(size.out), nullptr, 16), '\0');
    uint32_t state = 12345;  // a fixed LCG: the same noise every run
    for (char& c : bytes) {
      state = state * 1103515245u + 12345u;
      c = static_cast<char>(state >> 16);
    }
    write_file(noise, bytes);
    commands += " && objcopy --update-section " + std::string(section) + "='" + noise + "' '" + garbage + "'";
  }
  REQUIRE(run(commands).status == 0);
  std::unique_ptr<Symbolizer> symbolizer;
  try {
    symbolizer = Symbolizer::open(garbage);
  } catch (const lockscope::Error& error) {
    // A clear refusal is as good as a fallback; a crash is not.
    const std::string message = error.what();
    CHECK(message.find(garbage) != std::string::npos);
    return;
  }
  // Whatever the intact fixture names by its symbols, the garbage one names too.
  auto pristine = Symbolizer::open(g_fixture);
  const CommandResult nm = run("nm '" + garbage + "' | awk '$2 ~ /^[dDbBtT]$/ {print $1, $3}'");
  size_t symbols = 0;
  std::istringstream lines(nm.out);
  std::string address_text, name;
  while (lines >> address_text >> name) {
    ++symbols;
    const unsigned long long address = std::strtoull(address_text.c_str(), nullptr, 16);
    INFO(name << " at " << address_text);
    CHECK(symbolizer->name_data(address).found == pristine->name_data(address).found);
    CHECK(symbolizer->name_code(address).found == pristine->name_code(address).found);
  }
  CHECK(symbols > 10);
}

TEST_CASE("without debug info the ELF symbols still name addresses, with a warning") {
  const std::string no_debug = g_scratch + "/no-debug";
  REQUIRE(run("strip --strip-debug -o '" + no_debug + "' '" + g_fixture + "'").status == 0);
  auto symbolizer = Symbolizer::open(no_debug);
  REQUIRE(symbolizer->warnings().size() == 1);
  CHECK(symbolizer->warnings()[0].find("no DWARF") != std::string::npos);
  const unsigned long long address = gdb_address_of("rcu_state_fixture.node[1].lock");
  const unsigned long long base = gdb_address_of("rcu_state_fixture");
  const auto named = symbolizer->name_data(address);
  CHECK(named.found);
  CHECK(named.symbol == "rcu_state_fixture");
  CHECK(named.offset == address - base);
  char expected[64];
  snprintf(expected, sizeof expected, "rcu_state_fixture+0x%llx", address - base);
  CHECK(named.name == expected);
  CHECK(named.type.empty());
}

TEST_CASE("DWARF type cycles end the walk instead of looping") {
  // Hand-written DWARF (no compiler emits it; gdb itself dies of a stack overflow on some of it):
  // typedefs naming each other and themselves, a struct containing itself, a pointer to its own
  // typedef, an array of itself, const and volatile naming each other, a reference past the unit.
  const std::string cycles = g_scratch + "/type-cycles";
  REQUIRE(run("gcc -nostdlib -no-pie -o '" + cycles + "' '" + std::string(kFixtureDir) + "/type_cycles.s'").status ==
          0);
  auto symbolizer = Symbolizer::open(cycles);
  for (const char* variable :
       {"typedef_loop", "struct_loop", "self_typedef", "pointer_loop", "array_loop", "qualifier_loop", "broken_ref"}) {
    const CommandResult nm = run("nm '" + cycles + "' | awk '$3 == \"" + std::string(variable) + "\" {print $1}'");
    const unsigned long long address = std::strtoull(nm.out.c_str(), nullptr, 16);
    REQUIRE(address != 0);
    const auto named = symbolizer->name_data(address);
    INFO(variable << " named " << named.name);
    CHECK(named.found);
    CHECK(named.name.rfind(variable, 0) == 0);
    CHECK(named.name.size() < 40);  // stopped at the first repeat, not at a depth limit
    CHECK_FALSE(named.is_lock);
  }
}

TEST_CASE("a unit that refers into other units (gcc -flto: DW_FORM_ref_addr) is read through the whole file") {
  // The link-time unit holds the addresses, and the compile-time units the names and types that its
  // DIEs reach by DW_FORM_ref_addr: a view of the one unit would find neither.
  const std::string lto = g_scratch + "/lto";
  const std::string dir = kFixtureDir;
  REQUIRE(run("gcc -g -O2 -flto -no-pie -I'" + dir + "' '" + dir + "/lto_locks.c' '" + dir + "/lto_main.c' -o '" + lto +
              "'")
              .status == 0);
  REQUIRE(run("readelf --debug-dump=abbrev '" + lto + "' | grep -q DW_FORM_ref_addr").status == 0);
  const std::vector<std::string> targets = {"lto_locks.lock", "lto_locks.mutex", "lto_mutex"};
  std::vector<std::string> queries;
  for (const std::string& target : targets) {
    queries.push_back("print/x (unsigned long)&(" + target + ")");
    queries.push_back("whatis " + target);
  }
  const auto answers = gdb_batch(lto, queries, g_scratch);
  auto symbolizer = Symbolizer::open(lto);
  for (size_t i = 0; i < targets.size(); ++i) {
    INFO("target " << targets[i] << " gdb: " << answers[2 * i] << " | " << answers[2 * i + 1]);
    unsigned long long address = 0;
    REQUIRE(parse_gdb_value(answers[2 * i], &address));
    const auto named = symbolizer->name_data(address);
    INFO("named " << named.name << " (" << named.type << ")");
    CHECK(named.found);
    CHECK(named.name == targets[i]);
    CHECK(named.type == gdb_type(answers[2 * i + 1]));
    CHECK(named.is_lock);
  }
  // main's first instruction is in lto_entry, inlined at link time: addr2line -i names it.
  const CommandResult nm = run("nm '" + lto + "' | awk '$3 == \"main\" {print $1}'");
  const unsigned long long main_address = std::strtoull(nm.out.c_str(), nullptr, 16);
  REQUIRE(main_address != 0);
  const CommandResult oracle = run("addr2line -i -f -e '" + lto + "' " + trim(nm.out));
  REQUIRE(oracle.status == 0);
  const auto where = symbolizer->name_code(main_address);
  INFO("addr2line: " << oracle.out << " named " << where.name());
  CHECK(where.function == "main");
  REQUIRE(where.inlines.size() == 1);
  CHECK(where.inlines[0].function == oracle.out.substr(0, oracle.out.find('\n')));
}

TEST_CASE("kallsyms files name code and data symbols, and say when data symbols are missing") {
  // nm prints the /proc/kallsyms format; the symbol sizes are not in it, as in the kernel's.
  const std::string all = g_scratch + "/kallsyms-all";
  const std::string text_only = g_scratch + "/kallsyms-text";
  REQUIRE(run("nm '" + g_fixture + "' | awk 'NF == 3' > '" + all + "'").status == 0);
  REQUIRE(run("nm '" + g_fixture + "' | awk '$2 ~ /^[tT]$/' > '" + text_only + "'").status == 0);
  const unsigned long long lock = gdb_address_of("fixture_mutex");
  const unsigned long long main_address = gdb_address_of("main");
  auto full = Symbolizer::from_kallsyms(all);
  CHECK(full->name_data(lock).name == "fixture_mutex");
  CHECK(full->name_code(main_address + 4).name() == "main+0x4");
  auto code_only = Symbolizer::from_kallsyms(text_only);
  const auto unnamed = code_only->name_data(lock);
  CHECK_FALSE(unnamed.found);
  CHECK(unnamed.why_unnamed.find("CONFIG_KALLSYMS_ALL") != std::string::npos);
  CHECK(code_only->name_code(main_address + 4).name() == "main+0x4");

  // A kernel without CONFIG_KALLSYMS_ALL lists only section markers as data (seen on a 6.18
  // kernel: __start_init_stack and 34 other __start_/__stop_ symbols): an address past one is not
  // that marker plus an offset.
  const std::string markers = g_scratch + "/kallsyms-markers";
  write_file(markers,
             "ffffffff81000000 T _text\nffffffff83000000 D __start_init_stack\n"
             "ffffffff83100000 D __stop___jump_table\n");
  auto marker_only = Symbolizer::from_kallsyms(markers);
  const auto past_marker = marker_only->name_data(0xffffffff83008080);
  CHECK_FALSE(past_marker.found);
  CHECK(past_marker.why_unnamed.find("CONFIG_KALLSYMS_ALL") != std::string::npos);

  const std::string hidden = g_scratch + "/kallsyms-hidden";
  write_file(hidden, "0000000000000000 T _text\n0000000000000000 T main\n");
  try {
    Symbolizer::from_kallsyms(hidden);
    FAIL("zero addresses accepted");
  } catch (const lockscope::Error& e) {
    CHECK(std::string(e.what()).find("kptr_restrict") != std::string::npos);
  }
}

TEST_CASE("an address past a text end marker is said to be unnamed, not marker+offset") {
  // nm -n is the oracle for the layout: the marker is the last symbol before marker+1.
  const CommandResult nm = run("nm -n '" + g_fixture +
                               "' | awk 'found {print $1; exit} $3 == \"__fixture_text_end\" {print $1; found = 1}'");
  std::istringstream words(nm.out);
  std::string marker_text, next_text;
  REQUIRE(words >> marker_text >> next_text);
  const unsigned long long marker = std::stoull(marker_text, nullptr, 16);
  REQUIRE(std::stoull(next_text, nullptr, 16) > marker + 1);
  auto symbolizer = Symbolizer::open(g_fixture);
  CHECK(symbolizer->is_code(marker + 1));
  const auto past = symbolizer->name_code(marker + 1);
  CHECK_FALSE(past.found);
  CHECK(past.why_unnamed.find("__fixture_text_end") != std::string::npos);

  const std::string all = g_scratch + "/kallsyms-with-marker";
  REQUIRE(run("nm '" + g_fixture + "' | awk 'NF == 3' > '" + all + "'").status == 0);
  auto kallsyms = Symbolizer::from_kallsyms(all);
  const auto from_kallsyms = kallsyms->name_code(marker + 1);
  CHECK_FALSE(from_kallsyms.found);
  CHECK(from_kallsyms.why_unnamed.find("__fixture_text_end") != std::string::npos);

  // A marker that shares its address with the start of the next kind of text does not hide it.
  const unsigned long long shared = gdb_address_of("__fixture_b_start");
  REQUIRE(shared == gdb_address_of("__fixture_a_text_end"));
  CHECK(symbolizer->name_code(shared + 1).name() == "__fixture_b_start+0x1");
  CHECK(kallsyms->name_code(shared + 1).name() == "__fixture_b_start+0x1");

  // The shape seen with another kernel's kallsyms: a frame far past __entry_text_end. Functions
  // whose names merely end in _end are still functions.
  const std::string other = g_scratch + "/kallsyms-other-kernel";
  write_file(other,
             "ffffffff81000000 T _text\n"
             "ffffffff81110400 T __traceiter_contention_end\n"
             "ffffffff81a4903c T __noinstr_text_end\n"
             "ffffffff81a50000 T common_interrupt_return\n"
             "ffffffff81a50000 T __irqentry_text_end\n"
             "ffffffff81c00000 T entry_SYSCALL_64\n"
             "ffffffff81c01b17 T __entry_text_end\n"
             "ffffffff81e00000 T _etext\n");
  auto wrong_kernel = Symbolizer::from_kallsyms(other);
  const auto far = wrong_kernel->name_code(0xffffffff81c01b17ULL + 0xd4ece);
  CHECK_FALSE(far.found);
  CHECK(far.why_unnamed.find("__entry_text_end") != std::string::npos);
  CHECK_FALSE(wrong_kernel->name_code(0xffffffff81a4903cULL).found);  // at the marker itself too
  CHECK(wrong_kernel->name_code(0xffffffff81110404ULL).name() == "__traceiter_contention_end+0x4");
  CHECK(wrong_kernel->name_code(0xffffffff81c00010ULL).name() == "entry_SYSCALL_64+0x10");
  // An end marker listed after another symbol at its address: the other symbol names it.
  CHECK(wrong_kernel->name_code(0xffffffff81a50010ULL).name() == "common_interrupt_return+0x10");
}

TEST_CASE("the symbolize command prints one JSON object per address, from arguments or stdin") {
  const unsigned long long lock = gdb_address_of("rcu_state_fixture.gp_wq");
  const unsigned long long main_address = gdb_address_of("main");
  char args[80];
  snprintf(args, sizeof args, "0x%llx 0x%llx", lock, main_address + 1);
  const std::string base = "'" + g_cli + "' symbolize --vmlinux '" + g_fixture + "' --format jsonl";
  for (const std::string& command : {base + " " + args, "echo '" + std::string(args) + "' | " + base}) {
    const CommandResult result = run(command);
    REQUIRE(result.status == 0);
    const size_t newline = result.out.find('\n');
    const auto data = nlohmann::json::parse(result.out.substr(0, newline));
    const auto code = nlohmann::json::parse(result.out.substr(newline + 1));
    CHECK(data["name"] == "rcu_state_fixture.gp_wq.lock");
    CHECK(data["symbol"] == "rcu_state_fixture");
    CHECK(data["offset"].is_number());
    CHECK(data["section"] == ".bss");
    CHECK(data["percpu"] == false);
    CHECK(code["name"] == "main+0x1");
    CHECK(code["function"] == "main");
    CHECK(code["inlines"].is_array());
    CHECK(code["line"].get<int>() > 0);
    CHECK(code["file"].get<std::string>().find("main.c") != std::string::npos);
  }
  char relocated[40];
  snprintf(relocated, sizeof relocated, " 0x%llx", lock + 0x1000000);
  const CommandResult moved = run(base + " --kaslr-offset 0x1000000" + relocated);
  REQUIRE(moved.status == 0);
  CHECK(nlohmann::json::parse(moved.out)["name"] == "rcu_state_fixture.gp_wq.lock");
  const CommandResult bad = run(base + " 0xnothex 2>&1");
  CHECK(bad.status == 1);
  CHECK(bad.out.find("bad address") != std::string::npos);
}

TEST_CASE("the symbolize command with --kallsyms names every function and object as nm does") {
  // nm prints the /proc/kallsyms format. Every function and object nm gives a size (linker markers
  // such as _end have none) is looked up at its start and one byte in; nm's symbols at the same
  // address are its aliases, any of which is a right answer.
  const std::string kallsyms = g_scratch + "/kallsyms-cli";
  REQUIRE(run("nm '" + g_fixture + "' | awk 'NF == 3' > '" + kallsyms + "'").status == 0);
  std::map<unsigned long long, std::set<std::string>> names_at;
  {
    std::ifstream in(kallsyms);
    std::string address_text, type, name;
    while (in >> address_text >> type >> name) names_at[std::stoull(address_text, nullptr, 16)].insert(name);
  }
  struct Query {
    unsigned long long address = 0;
    unsigned long long symbol_start = 0;
    bool code = false;
  };
  std::vector<Query> queries;
  const CommandResult sized =
      run("nm -S '" + g_fixture + "' | awk 'NF == 4 && $3 ~ /^[tTdDbBrR]$/ {print $1, $2, $3}'");
  REQUIRE(sized.status == 0);
  std::istringstream lines(sized.out);
  std::string address_text, size_text, type;
  while (lines >> address_text >> size_text >> type) {
    const unsigned long long start = std::stoull(address_text, nullptr, 16);
    const unsigned long long size = std::stoull(size_text, nullptr, 16);
    const bool code = type == "t" || type == "T";
    queries.push_back({start, start, code});
    // One byte in, unless another symbol starts there.
    const auto next = names_at.upper_bound(start);
    if (size > 1 && (next == names_at.end() || next->first > start + 1)) queries.push_back({start + 1, start, code});
  }
  REQUIRE(std::count_if(queries.begin(), queries.end(), [](const Query& q) { return q.code; }) > 5);
  REQUIRE(std::count_if(queries.begin(), queries.end(), [](const Query& q) { return !q.code; }) > 10);
  std::string arguments;
  for (const Query& q : queries) {
    char hex[32];
    snprintf(hex, sizeof hex, " 0x%llx", q.address);
    arguments += hex;
  }
  const CommandResult result =
      run("'" + g_cli + "' symbolize --kallsyms '" + kallsyms + "' --format jsonl" + arguments + " 2>&1");
  REQUIRE(result.status == 0);
  std::istringstream out(result.out);
  std::string line;
  size_t checked = 0;
  for (const Query& q : queries) {
    REQUIRE(std::getline(out, line));
    const auto j = nlohmann::json::parse(line);
    const std::set<std::string>& aliases = names_at[q.symbol_start];
    const unsigned long long offset = q.address - q.symbol_start;
    INFO("0x" << std::hex << q.address << std::dec << " nm: " << *aliases.begin() << "+" << offset
              << " ours: " << line);
    CHECK(j["found"] == true);
    CHECK(j["kind"] == (q.code ? "code" : "data"));
    CHECK(aliases.count(j["symbol"].get<std::string>()) == 1);
    CHECK(j["offset"].get<unsigned long long>() == offset);
    char suffix[32];
    snprintf(suffix, sizeof suffix, "+0x%llx", offset);
    // Code is always function+0xoff; data omits a zero offset.
    CHECK(j["name"] == j["symbol"].get<std::string>() + (q.code || offset != 0 ? suffix : ""));
    ++checked;
  }
  CHECK(checked == queries.size());
}

int main(int argc, char** argv) {
  for (const char* tool : {"gcc", "gdb", "nm", "addr2line", "strip", "readelf"}) {
    if (!have_tool(tool)) {
      std::cout << "SKIP: " << tool << " is not installed; it builds or checks the fixtures\n";
      return 77;
    }
  }
  char scratch[] = "/tmp/lockscope-symbolizer-XXXXXX";
  if (mkdtemp(scratch) == nullptr) {
    std::cerr << "cannot make a scratch directory\n";
    return 1;
  }
  g_scratch = scratch;
  g_fixture = g_scratch + "/fixture";
  g_cli = LOCKSCOPE_SYMBOLIZE_CLI;
  const std::string dir = kFixtureDir;
  const std::string compile = "gcc -g -O1 -fno-inline-small-functions -no-pie -Wl,--build-id=sha1 -Wl,-T,'" + dir +
                              "/percpu.ld' -I'" + dir + "' '" + dir + "/globals.c' '" + dir + "/other.c' '" + dir +
                              "/main.c' -o '" + g_fixture + "'";
  if (run(compile).status != 0) {
    std::cerr << "cannot compile the fixture: " << compile << "\n";
    return 1;
  }
  const int failed = Catch::Session().run(argc, argv);
  run("rm -rf '" + g_scratch + "'");
  return failed;
}
