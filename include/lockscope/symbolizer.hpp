// Names kernel addresses: data addresses (locks) as gdb-evaluable member paths, code addresses as
// function+offset with inline frames and source lines. It knows nothing of perf.data: callers hand it
// runtime addresses and the relocation (runtime `_text` minus the vmlinux's `_text`).
//
// Sources, best first: a vmlinux with DWARF (ELF symbols + types), a vmlinux without DWARF (ELF
// symbols only, with a warning), or a /proc/kallsyms-format file (symbols only, no sizes or types).
// Nothing is parsed up front beyond the ELF symbol table: DWARF is read lazily, only from the
// compile units that hold the asked-for addresses (see docs/symbolizer.md, Cost), and every answer
// is cached by address.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockscope::symbolizer {

// What a data address is. `found` is false when nothing names the address; the other fields are
// then empty and `why_unnamed` says why (never a guess).
struct DataName {
  bool found = false;
  std::string name;      // gdb-evaluable: "rcu_state.node[0].lock", "'mm/foo.c'::lock", "func::lock",
                         // "*((char *)&rcu_state.node[0] + 0x4)" for a byte inside a member or in
                         // padding, or "symbol+0x10" when no type information covers the address
  std::string symbol;    // the containing symbol as the ELF symbol table (or kallsyms) has it
  uint64_t offset = 0;   // address minus the symbol's start
  std::string section;   // ".data", ".bss", ".data..percpu"; empty from kallsyms
  bool percpu = false;   // a per-cpu variable (its address is an offset into each CPU's area)
  int cpu = -1;          // whose copy, when a runtime per-cpu address was matched (see set_percpu_offsets)
  std::string type;      // C type of the named object ("spinlock_t"), empty without DWARF
  bool is_lock = false;  // `type` is one of the kernel's lock types
  std::string why_unnamed;
};

// One frame of a code address: an inlined function (or the outer function) and its source line.
struct InlineFrame {
  std::string function;
  std::string file;  // relative to the kernel source tree where the DWARF allows: "kernel/ucount.c"
  int line = 0;
};

struct CodeLocation {
  bool found = false;
  std::string function;  // the ELF symbol containing the address: "alloc_ucounts"
  uint64_t offset = 0;   // address minus the function's start
  std::string section;
  // Functions inlined at the address, innermost first, each with its own source line. The outer
  // function's line (the call site of the outermost inline) is `file`/`line` below.
  std::vector<InlineFrame> inlines;
  std::string file;
  int line = 0;
  std::string why_unnamed;
  // "alloc_ucounts+0x35"
  std::string name() const;
};

class Symbolizer {
 public:
  // Opens a vmlinux. Throws lockscope::Error when it is not a readable ELF file or has no symbol
  // table. Without DWARF it falls back to the ELF symbols and says so in warnings().
  static std::unique_ptr<Symbolizer> open(const std::string& vmlinux_path);
  // Reads a /proc/kallsyms-format file ("ffffffff81000000 T _text"). Its addresses are the running
  // kernel's, so the relocation stays 0 unless set. Throws when no line has a non-zero address.
  static std::unique_ptr<Symbolizer> from_kallsyms(const std::string& kallsyms_path);

  virtual ~Symbolizer() = default;

  // runtime address = link-time address + relocation. Per-cpu offsets are never relocated.
  virtual void set_relocation(int64_t relocation) = 0;
  // The running kernel's __per_cpu_offset[cpu] values, when the caller knows them (a vmlinux does
  // not hold them: they are set at boot). With them, an address inside a CPU's per-cpu area (the
  // run queue lock at 0xff1100007ce31c40) is named as that per-cpu variable, with `cpu` set.
  virtual void set_percpu_offsets(std::vector<uint64_t> offsets_by_cpu) = 0;
  virtual int64_t relocation() const = 0;
  // Link-time address of `_text`, 0 when unknown. Relocation = runtime _text - text_address().
  virtual uint64_t text_address() const = 0;
  // The GNU build-id of the vmlinux as lowercase hex, empty when it has none (or from kallsyms).
  virtual std::string build_id() const = 0;
  // Non-fatal problems found so far (no DWARF, build-id mismatch, ...), one line each.
  virtual const std::vector<std::string>& warnings() const = 0;
  // Compares with the build-id the recording saw; on a difference adds a warning naming both and
  // returns false. An empty `expected_hex` or an unknown own build-id compares as equal.
  virtual bool check_build_id(const std::string& expected_hex) = 0;

  // Runtime address (relocation applied) of a symbol by its exact name, e.g. the section bounds
  // `__lock_text_start` that perf uses to recognise lock functions; nothing when absent.
  virtual std::optional<uint64_t> address_of(std::string_view symbol) = 0;

  // Reads now what the first lookups would otherwise read on demand (for a vmlinux: the index of
  // symbol names and .debug_aranges), for a caller with a thread to spare while it does other work.
  // Call it before any lookup, never during one: a Symbolizer is used by one thread at a time.
  virtual void warm_up() {}

  virtual DataName name_data(uint64_t runtime_address) = 0;
  virtual CodeLocation name_code(uint64_t runtime_address) = 0;
  // Whether the address lies in an executable section (or a text symbol from kallsyms).
  virtual bool is_code(uint64_t runtime_address) = 0;
};

}  // namespace lockscope::symbolizer
