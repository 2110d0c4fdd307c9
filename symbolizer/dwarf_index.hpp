// The DWARF side of a vmlinux, indexed lazily because a distribution vmlinux carries ~170 MB of
// .debug_info and a report needs a few hundred answers:
//  - variables: one pass over the top-level DIEs of every CU (globals and file statics) on the
//    first data lookup; a function-local static (ELF `lock.1`) is found by walking only the CUs
//    whose file name matches the STT_FILE before its symbol;
//  - code: .debug_aranges finds the CU; that CU's subprogram ranges are collected once; inline
//    frames are found by descending only into DIEs whose ranges contain the address.
// Type walks are depth-limited so that a DWARF type cycle cannot loop forever.
#pragma once

#include <elfutils/libdw.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lockscope/symbolizer.hpp"

namespace lockscope::symbolizer {

// A variable with a fixed address, as DWARF describes it.
struct DwarfVariable {
  Dwarf_Off die = 0;
  std::string name;      // "lock"
  std::string function;  // for a function-local static: the function it is declared in
  // A function-local static declared in a block nested inside its function (an inner `{ }`, or the
  // body of a function inlined into it): gdb's `func::var` searches only the function's outermost
  // block, so such a static needs another spelling.
  bool in_inner_block = false;
  std::string cu_name;  // "kernel/ucount.c", for a gdb file qualifier
  uint64_t size = 0;    // of its type; 0 when unknown
  std::string type;     // its C type as gdb spells it ("spinlock_t", "struct mutex")
};

// Where an offset into a variable lands: the member path ("" for the variable itself, then
// ".node[0].lock"), the type there, and what is left over inside that object.
struct MemberPath {
  std::string path;
  std::string type;
  bool is_lock = false;
  uint64_t residual = 0;
};

class DwarfIndex {
 public:
  // Takes ownership of nothing: `dwarf` lives as long as the Symbolizer that owns both.
  explicit DwarfIndex(Dwarf* dwarf) : dwarf_(dwarf) {}

  // The variable that the ELF symbol `symbol_name` at `address` stands for, `offset` being how far
  // into it the looked-up address lies. `file_hint` is the STT_FILE of a local ELF symbol, used to
  // find function-local statics; empty for globals. Several variables can start at one address (an
  // empty `static struct lock_class_key __key` shares the next object's address): the one named
  // like the symbol (without gcc's `.N` suffix) wins, then one whose size covers the offset.
  std::optional<DwarfVariable> variable_at(uint64_t address, uint64_t offset, std::string_view symbol_name,
                                           std::string_view file_hint);
  MemberPath member_path(const DwarfVariable& variable, uint64_t offset);

  // Inline frames and source lines of a code address; fills `inlines`, `file` and `line`.
  void describe_code(uint64_t address, CodeLocation& out);

 private:
  struct CompileUnit {
    Dwarf_Off die = 0;
    std::string name;
  };
  struct Subprogram {
    uint64_t low = 0, high = 0;
    Dwarf_Off die = 0;
  };
  struct Located {
    Dwarf_Off die = 0;
    Dwarf_Off cu = 0;
    std::string function;
    bool in_inner_block = false;
  };

  void index_top_level_variables();
  void index_whole_cu(Dwarf_Off cu_die);
  void walk_for_statics(Dwarf_Die* parent, Dwarf_Off cu, const std::string& function, bool in_inner_block, int depth);
  void add_if_located(Dwarf_Die* die, Dwarf_Off cu, const std::string& function, bool in_inner_block);
  std::optional<DwarfVariable> describe_variable(const Located& located);
  // The best variable DIE at `address` (see variable_at); `named_as_wanted` says whether its name
  // is `wanted`. Null when no DIE with a name is there.
  const Located* choose_variable(uint64_t address, uint64_t offset, std::string_view wanted, bool* named_as_wanted);
  const std::vector<Subprogram>& subprograms_of(Dwarf_Die* cu_die);
  const std::string& source_root_of(Dwarf_Die* cu_die);
  std::string source_path(Dwarf_Die* cu_die, const char* raw_path);

  Dwarf* dwarf_;
  bool top_level_indexed_ = false;
  std::vector<CompileUnit> units_;
  // Every variable DIE with a fixed address, by address: zero-size objects share addresses.
  std::unordered_multimap<uint64_t, Located> variables_;
  std::unordered_set<Dwarf_Off> walked_units_;
  std::unordered_map<Dwarf_Off, std::vector<Subprogram>> subprograms_;
  std::unordered_map<Dwarf_Off, std::string> source_roots_;
};

// True for the kernel's lock types, by typedef name ("spinlock_t") or struct tag ("mutex").
bool is_lock_type_name(std::string_view name);

}  // namespace lockscope::symbolizer
