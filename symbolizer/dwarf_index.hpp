// The DWARF side of a vmlinux, read lazily because a distribution vmlinux carries ~170 MB of
// .debug_info in ~2400 units and a report needs answers from a few hundred of them. The cost must
// grow with those units only: every touched page of the mapped file costs a page fault (tens of
// microseconds in a VM) and up to a large folio (~100 KB) of resident memory.
//  - Units: libdw reads the header of every unit before the one asked for (dwarf_offdie,
//    dwarf_addrdie: ~0.14 s and ~110 MB for the Debian vmlinux), so each needed unit is opened as
//    a Dwarf of its own over a one-unit view of .debug_info (the other sections stay whole). A
//    unit whose abbreviations use a form that points outside it (DW_FORM_ref_addr from LTO or dwz,
//    DW_FORM_ref_sig8, the supplementary-file forms) is served by the whole-file Dwarf instead: the
//    Debian kernel's units use none. .debug_aranges is read here.
//  - Variables: the ELF symbol table names the object file (an STT_FILE group) of a static, and the
//    neighbouring statics that of a global; a local function of that file finds its unit through
//    .debug_aranges. Only that unit's top-level DIEs are scanned (its whole tree for a
//    function-local static `lock.1`). Without a match there, all units are scanned as before.
//  - Code: the unit's subprogram ranges are collected once; inline frames are found by descending
//    only into DIEs whose ranges contain the address. Source lines come from the unit's line
//    program, read here (line_table.hpp) rather than sorted whole by libdw.
//  - Touched .debug_* pages are unmapped again every few lookups (MADV_DONTNEED on the read-only
//    mapping: a later access reads them back from the page cache), so resident memory stays small.
// Type walks are depth-limited so that a DWARF type cycle cannot loop forever.
#pragma once

#include <elfutils/libdw.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "line_table.hpp"
#include "lockscope/symbolizer.hpp"

namespace lockscope::symbolizer {

// A variable with a fixed address, as DWARF describes it.
struct DwarfVariable {
  Dwarf_Off unit = 0;    // offset of its unit's header in .debug_info
  Dwarf_Off die = 0;     // offset in .debug_info
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
  // Takes ownership of nothing: `elf` and `whole` (the Dwarf of the whole file, for the full
  // scans) live as long as the Symbolizer that owns all three.
  DwarfIndex(Elf* elf, Dwarf* whole);
  ~DwarfIndex();
  DwarfIndex(const DwarfIndex&) = delete;
  DwarfIndex& operator=(const DwarfIndex&) = delete;

  // The variable that the ELF symbol `symbol_name` at `address` stands for, `offset` being how far
  // into it the looked-up address lies. `file_hint` is the STT_FILE of a local ELF symbol, used to
  // find function-local statics; empty for globals. Several variables can start at one address (an
  // empty `static struct lock_class_key __key` shares the next object's address): the one named
  // like the symbol (without gcc's `.N` suffix) wins, then one whose size covers the offset.
  // `code_of_its_file` are addresses of functions of the object file(s) likely to define the
  // variable: their units are searched first.
  std::optional<DwarfVariable> variable_at(uint64_t address, uint64_t offset, std::string_view symbol_name,
                                           std::string_view file_hint, const std::vector<uint64_t>& code_of_its_file);
  MemberPath member_path(const DwarfVariable& variable, uint64_t offset);

  // Inline frames and source lines of a code address; fills `inlines`, `file` and `line`.
  void describe_code(uint64_t address, CodeLocation& out);

  // .debug_aranges, read at the first lookup of code unless read here before.
  void read_code_ranges();

 private:
  struct CompileUnit {
    Dwarf_Off unit = 0;
    std::string name;
  };
  struct Subprogram {
    uint64_t low = 0, high = 0;
    Dwarf_Off die = 0;  // in its unit's view
  };
  struct Located {
    Dwarf_Off die = 0;   // offset in .debug_info
    Dwarf_Off unit = 0;  // of the unit header
    std::string function;
    bool in_inner_block = false;
  };
  // One unit as a Dwarf of its own: DIE offsets in it are offsets from `unit`.
  struct UnitView {
    Elf* elf = nullptr;
    Dwarf* dwarf = nullptr;
    Dwarf_Off unit = 0;
    Dwarf_Off cu_die = 0;  // offset in .debug_info
  };
  struct CodeRange {
    uint64_t low = 0, high = 0;
    Dwarf_Off unit = 0;
  };

  std::optional<Dwarf_Off> unit_of_code(uint64_t address);
  // Null when the unit cannot be opened on its own; callers then use the whole-file Dwarf.
  UnitView* view_of(Dwarf_Off unit);
  // Header and contents, when the unit's header is sound and it ends inside .debug_info.
  std::optional<uint64_t> unit_size(Dwarf_Off unit) const;
  UnitView* opened_view(Dwarf_Off unit) const;
  std::unique_ptr<UnitView> open_view(Dwarf_Off unit);
  // False when a DIE of the unit can refer outside it (see the top), or when its header or
  // abbreviations cannot be read: the unit is then not viewed alone. `size` is unit_size(unit).
  bool refers_only_inside(Dwarf_Off unit, uint64_t size);
  // Whether the abbreviation table at `offset` in .debug_abbrev is sound and uses no such form.
  bool abbrevs_refer_only_inside(uint64_t offset) const;
  bool open_die(Dwarf_Off unit, Dwarf_Off die, Dwarf_Die* out);
  bool open_unit_die(Dwarf_Off unit, Dwarf_Die* out);
  void release_pages_now_and_then();
  void release_pages();

  void index_top_level_variables();
  void index_unit_top_level(Dwarf_Off unit, Dwarf_Die* cu_die, Dwarf_Off die_base);
  void index_whole_unit(Dwarf_Off unit);
  // `die_base` is what turns an offset in the Dwarf the DIEs come from into one in .debug_info.
  void walk_for_statics(Dwarf_Die* parent, Dwarf_Off unit, Dwarf_Off die_base, const std::string& function,
                        bool in_inner_block, int depth);
  void add_if_located(Dwarf_Die* die, Dwarf_Off unit, Dwarf_Off die_base, const std::string& function,
                      bool in_inner_block);
  std::optional<DwarfVariable> describe_variable(const Located& located);
  // The best variable DIE at `address` (see variable_at); `named_as_wanted` says whether its name
  // is `wanted`. Null when no DIE with a name is there.
  const Located* choose_variable(uint64_t address, uint64_t offset, std::string_view wanted, bool* named_as_wanted);
  const std::vector<Subprogram>& subprograms_of(Dwarf_Off unit, Dwarf_Die* cu_die);
  const std::string& source_root_of(Dwarf_Off unit, Dwarf_Die* cu_die);
  // Null when the unit has no line table or it cannot be read.
  const LineTable* line_table_of(Dwarf_Off unit, Dwarf_Die* cu_die);
  std::string source_path(Dwarf_Off unit, Dwarf_Die* cu_die, const char* raw_path);

  Elf* elf_;
  Dwarf* whole_;
  // .debug_info as mapped by libelf, and where the .debug_* sections lie in the mapping.
  const unsigned char* info_ = nullptr;
  uint64_t info_size_ = 0;
  size_t info_section_ = 0;
  // .debug_abbrev as libelf (or libdw, decompressing it) gives it; null when there is none.
  const unsigned char* abbrev_ = nullptr;
  uint64_t abbrev_size_ = 0;
  std::unordered_map<uint64_t, bool> abbrevs_checked_;  // by offset in .debug_abbrev
  char* debug_pages_ = nullptr;
  size_t debug_pages_size_ = 0;
  unsigned lookups_since_release_ = 0;

  bool code_ranges_read_ = false;
  std::vector<CodeRange> code_ranges_;  // from .debug_aranges, by address
  std::unordered_map<Dwarf_Off, std::unique_ptr<UnitView>> views_;

  bool top_level_indexed_ = false;
  std::vector<CompileUnit> units_;
  // Every variable DIE with a fixed address, by address: zero-size objects share addresses.
  std::unordered_multimap<uint64_t, Located> variables_;
  std::unordered_set<Dwarf_Off> top_level_units_;
  std::unordered_set<Dwarf_Off> walked_units_;
  std::unordered_map<Dwarf_Off, std::vector<Subprogram>> subprograms_;
  std::unordered_map<Dwarf_Off, std::string> source_roots_;
  LineSections line_sections_;  // as libelf (or libdw, decompressing them) gives them
  std::unordered_map<Dwarf_Off, std::unique_ptr<LineTable>> line_tables_;
};

// True for the kernel's lock types, by typedef name ("spinlock_t") or struct tag ("mutex").
bool is_lock_type_name(std::string_view name);

}  // namespace lockscope::symbolizer
