// The ELF side of a vmlinux: sections, the symbol table sorted by address, `_text` and the build-id.
// Names point into libelf's mapping of the file, which lives as long as the ElfImage.
#pragma once

#include <gelf.h>
#include <libelf.h>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lockscope/unique_fd.hpp"

namespace lockscope::symbolizer {

struct SectionInfo {
  std::string_view name;
  uint64_t address = 0;
  uint64_t size = 0;
  bool executable = false;
};

struct ElfSymbol {
  uint64_t address = 0;
  uint64_t size = 0;
  std::string_view name;
  // The STT_FILE that precedes a local symbol ("ucount.c"); empty for globals. Locals are grouped
  // by source file in the symbol table, so this is how a file static finds its compile unit.
  std::string_view file;
  // Which STT_FILE group (1-based, in symbol-table order) a local symbol belongs to; 0 for globals.
  // Two files can share a name ("core.c"), a group is one object file and so one compile unit.
  uint32_t file_group = 0;
  uint16_t section_index = 0;
  uint8_t type = STT_NOTYPE;
  bool global = false;
  bool weak = false;
  uint32_t index = 0;  // in .symtab, to break ties as perf does
};

// One symbol with its section and the distance to it; `symbol` null when nothing contains the
// address.
struct SymbolHit {
  const ElfSymbol* symbol = nullptr;
  const SectionInfo* section = nullptr;
  uint64_t offset = 0;
  // Set (with `symbol` null) when the nearest symbol before the address is a text end marker.
  const ElfSymbol* past_marker = nullptr;
};

class ElfImage {
 public:
  // Throws lockscope::Error (with the path) when the file is not a complete ELF file with a
  // symbol table.
  explicit ElfImage(const std::string& path);
  ~ElfImage();
  ElfImage(const ElfImage&) = delete;
  ElfImage& operator=(const ElfImage&) = delete;

  Elf* elf() const { return elf_; }
  const std::string& path() const { return path_; }
  const std::string& build_id() const { return build_id_; }
  uint64_t text_address() const { return text_address_; }

  // The allocated section containing a link-time address, null when none does.
  const SectionInfo* section_at(uint64_t address) const;
  // The per-cpu section when it is linked at 0 (x86-64 SMP): its addresses are per-cpu offsets.
  const SectionInfo* percpu_section() const { return percpu_; }

  // The symbol containing `address` in the same section. Data: a sized object whose range holds the
  // address, else the nearest unsized symbol before it. Code, as perf names frames: the nearest
  // symbol before the address (an inner label such as entry_SYSCALL_64_after_hwframe wins over
  // the function around it), an unsized one reaching up to the next symbol.
  SymbolHit data_symbol_at(uint64_t address) const;
  SymbolHit code_symbol_at(uint64_t address) const;

  // Link-time address of the first symbol with this exact name.
  std::optional<uint64_t> address_of(std::string_view name) const;
  // How many symbols have this exact name (to know when a name needs a file qualifier).
  size_t count_named(std::string_view name) const;
  // Whether an out-of-line copy of the function exists (gdb resolves `func::var` only then).
  bool has_function(std::string_view name) const;

  // Link-time addresses of a few local functions of a file group: through .debug_aranges they find
  // the compile unit of that object file without reading any other unit.
  const std::vector<uint64_t>& code_of_file_group(uint32_t group) const;
  // The file groups of the nearest local symbols before and after `address` in its section: a
  // global variable is laid out among the statics of its own object file, so these are the likely
  // compile units that define it.
  std::vector<uint32_t> neighbouring_file_groups(uint64_t address) const;
  // The file group of the first local symbol with this exact name, 0 when there is none.
  // EXPORT_SYMBOL(x) leaves a local `__ksymtab_x` in the object file that defines x.
  uint32_t file_group_of(std::string_view local_name) const;
  // Builds the index of names now rather than at the first lookup by name (see name_hashes_).
  void index_names() const;

 private:
  SymbolHit symbol_at(uint64_t address, bool want_code) const;
  void check_complete(uint64_t file_size);
  void read_sections();
  void read_symbols();
  void read_build_id();
  // The symbols named exactly `name`.
  std::vector<const ElfSymbol*> named(std::string_view name) const;

  std::string path_;
  UniqueFd fd_;
  Elf* elf_ = nullptr;
  std::vector<SectionInfo> sections_;             // indexed by section number
  std::vector<const SectionInfo*> alloc_sorted_;  // allocated, non-empty, by address
  const SectionInfo* percpu_ = nullptr;
  std::vector<ElfSymbol> symbols_;  // by address
  // (hash of the name, index in symbols_), sorted; built on first use: only naming data needs it,
  // and a hash table or a sort of 130k names costs 0.05-0.1 s where sorting integers takes ~10 ms.
  mutable bool names_indexed_ = false;
  mutable std::vector<std::pair<size_t, uint32_t>> name_hashes_;
  std::vector<std::vector<uint64_t>> file_group_code_;  // by file group; [0] is for globals
  std::string build_id_;
  uint64_t text_address_ = 0;
};

// A linker-script symbol marking where a kind of kernel text ends (`__entry_text_end`,
// `__lock_text_end`, `__sched_text_end`, ...). Nothing past it belongs to the symbol: an address
// named `__entry_text_end+0xd4ece` is a guess (typically a kallsyms of another kernel). Only the
// `__*_text_end` shape is taken: plain `*_end` names are often real functions
// (`__traceiter_contention_end`, `__end_swap_bio_write`) or labels followed by code
// (`ftrace_caller_end`).
bool is_text_end_marker(std::string_view name);

// Bytes as lowercase hex.
std::string to_hex(const unsigned char* bytes, size_t count);
// "0x1f"
std::string hex_address(uint64_t value);

}  // namespace lockscope::symbolizer
