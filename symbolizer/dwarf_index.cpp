#include "dwarf_index.hpp"

#include <dwarf.h>
#include <gelf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace lockscope::symbolizer {

namespace {

// Deeper than any real kernel type nesting (a few levels of structs in arrays in structs); a DWARF
// type cycle or a malformed chain stops here instead of recursing forever.
constexpr int kMaxTypeDepth = 48;

bool follow_type(Dwarf_Die* die, Dwarf_Die* result) {
  Dwarf_Attribute attr;
  if (dwarf_attr_integrate(die, DW_AT_type, &attr) == nullptr) return false;
  return dwarf_formref_die(&attr, result) != nullptr;
}

bool is_qualifier(int tag) {
  return tag == DW_TAG_const_type || tag == DW_TAG_volatile_type || tag == DW_TAG_restrict_type ||
         tag == DW_TAG_atomic_type;
}

std::string tagged_name(Dwarf_Die* die) {
  const char* name = dwarf_diename(die);
  std::string base = name != nullptr ? name : "<anonymous>";
  switch (dwarf_tag(die)) {
    case DW_TAG_structure_type: return "struct " + (name != nullptr ? base : std::string("{...}"));
    case DW_TAG_union_type: return "union " + (name != nullptr ? base : std::string("{...}"));
    case DW_TAG_enumeration_type: return "enum " + (name != nullptr ? base : std::string("{...}"));
    default: return base;
  }
}

struct ArrayDims {
  std::vector<uint64_t> counts;  // 0 = unknown (a flexible array)
};

ArrayDims array_dims(Dwarf_Die* array) {
  ArrayDims dims;
  Dwarf_Die child;
  if (dwarf_child(array, &child) != 0) return dims;
  do {
    if (dwarf_tag(&child) != DW_TAG_subrange_type) continue;
    Dwarf_Attribute attr;
    Dwarf_Word value = 0;
    if (dwarf_attr(&child, DW_AT_count, &attr) != nullptr && dwarf_formudata(&attr, &value) == 0) {
      dims.counts.push_back(value);
    } else if (dwarf_attr(&child, DW_AT_upper_bound, &attr) != nullptr && dwarf_formudata(&attr, &value) == 0) {
      dims.counts.push_back(value + 1);  // C arrays start at 0
    } else {
      dims.counts.push_back(0);
    }
  } while (dwarf_siblingof(&child, &child) == 0);
  return dims;
}

uint64_t type_size(Dwarf_Die type, int depth = 0) {
  for (; depth < kMaxTypeDepth; ++depth) {
    Dwarf_Attribute attr;
    Dwarf_Word size = 0;
    if (dwarf_attr(&type, DW_AT_byte_size, &attr) != nullptr && dwarf_formudata(&attr, &size) == 0) return size;
    const int tag = dwarf_tag(&type);
    if (tag == DW_TAG_array_type) {
      Dwarf_Die element;
      if (!follow_type(&type, &element)) return 0;
      uint64_t total = type_size(element, depth + 1);
      for (uint64_t count : array_dims(&type).counts) total *= count;
      return total;
    }
    if (tag == DW_TAG_pointer_type) return 8;
    if (tag != DW_TAG_typedef && !is_qualifier(tag)) return 0;
    if (!follow_type(&type, &type)) return 0;
  }
  return 0;
}

std::string type_display(Dwarf_Die type, int depth = 0) {
  if (depth > kMaxTypeDepth) return "?";
  const int tag = dwarf_tag(&type);
  Dwarf_Die target;
  const bool has_target = follow_type(&type, &target);
  switch (tag) {
    case DW_TAG_pointer_type: return (has_target ? type_display(target, depth + 1) : "void") + " *";
    case DW_TAG_const_type: return "const " + (has_target ? type_display(target, depth + 1) : "void");
    case DW_TAG_volatile_type: return "volatile " + (has_target ? type_display(target, depth + 1) : "void");
    case DW_TAG_array_type: {
      std::string out = has_target ? type_display(target, depth + 1) : "?";
      out += " ";
      // Appended piece by piece: GCC 12 warns falsely on "literal" + std::string (-Wrestrict, bug 105329).
      for (uint64_t count : array_dims(&type).counts) {
        out += '[';
        if (count != 0) out += std::to_string(count);
        out += ']';
      }
      return out;
    }
    case DW_TAG_subroutine_type: return "function";
    default: return tagged_name(&type);
  }
}

// The type under typedefs and qualifiers, what to call it, and whether any name on the way is a
// lock type's.
struct PeeledType {
  bool ok = false;
  Dwarf_Die core{};
  std::string display;
  bool is_lock = false;
};

PeeledType peel(Dwarf_Die type) {
  PeeledType out;
  out.display = type_display(type);
  for (int depth = 0; depth < kMaxTypeDepth; ++depth) {
    const int tag = dwarf_tag(&type);
    const char* name = dwarf_diename(&type);
    if (tag == DW_TAG_typedef || is_qualifier(tag)) {
      if (tag == DW_TAG_typedef && name != nullptr && is_lock_type_name(name)) out.is_lock = true;
      if (!follow_type(&type, &type)) return out;
      continue;
    }
    if ((tag == DW_TAG_structure_type || tag == DW_TAG_union_type) && name != nullptr && is_lock_type_name(name))
      out.is_lock = true;
    out.core = type;
    out.ok = true;
    return out;
  }
  return out;
}

bool member_offset(Dwarf_Die* member, uint64_t* offset) {
  Dwarf_Attribute attr;
  if (dwarf_attr(member, DW_AT_data_member_location, &attr) == nullptr) {
    // Union members have no location; bit-fields have DW_AT_data_bit_offset and no address.
    if (dwarf_hasattr(member, DW_AT_data_bit_offset) || dwarf_hasattr(member, DW_AT_bit_size)) return false;
    *offset = 0;
    return true;
  }
  if (dwarf_hasattr(member, DW_AT_bit_size)) return false;
  Dwarf_Word value = 0;
  if (dwarf_formudata(&attr, &value) == 0) {
    *offset = value;
    return true;
  }
  Dwarf_Op* ops = nullptr;
  size_t count = 0;
  if (dwarf_getlocation(&attr, &ops, &count) == 0 && count == 1 && ops[0].atom == DW_OP_plus_uconst) {
    *offset = ops[0].number;
    return true;
  }
  return false;
}

// `seen` holds the (type, offset) pairs on the way down: meeting one again means the DWARF has a type
// that contains itself, which only malformed input has; the walk stops there.
MemberPath describe(Dwarf_Die type, uint64_t offset, const std::string& path, int depth,
                    std::vector<std::pair<Dwarf_Off, uint64_t>>& seen) {
  PeeledType peeled = peel(type);
  MemberPath here{path, peeled.display, peeled.is_lock, offset};
  if (!peeled.ok || depth > kMaxTypeDepth) return here;
  const std::pair<Dwarf_Off, uint64_t> visit{dwarf_dieoffset(&peeled.core), offset};
  if (std::find(seen.begin(), seen.end(), visit) != seen.end()) return here;
  seen.push_back(visit);
  // The outermost lock that starts at the address is what the kernel locked.
  if (offset == 0 && peeled.is_lock) return here;
  const int tag = dwarf_tag(&peeled.core);
  if (tag == DW_TAG_structure_type || tag == DW_TAG_union_type || tag == DW_TAG_class_type) {
    std::optional<MemberPath> first;
    Dwarf_Die member;
    if (dwarf_child(&peeled.core, &member) != 0) return here;
    do {
      if (dwarf_tag(&member) != DW_TAG_member) continue;
      uint64_t start = 0;
      Dwarf_Die member_type;
      if (!member_offset(&member, &start) || !follow_type(&member, &member_type) || offset < start) continue;
      const uint64_t size = type_size(member_type);
      Dwarf_Die core = member_type;
      for (int i = 0; i < kMaxTypeDepth && (dwarf_tag(&core) == DW_TAG_typedef || is_qualifier(dwarf_tag(&core))); ++i)
        if (!follow_type(&core, &core)) break;
      const bool flexible = size == 0 && dwarf_tag(&core) == DW_TAG_array_type;
      if (!(offset - start < size || flexible)) continue;
      const char* name = dwarf_diename(&member);
      // Members of anonymous structs and unions are named directly in C (and gdb).
      const std::string member_path = name != nullptr ? path + "." + name : path;
      const size_t seen_before = seen.size();
      MemberPath inner = describe(member_type, offset - start, member_path, depth + 1, seen);
      seen.resize(seen_before);  // each union alternative is walked afresh
      if (tag != DW_TAG_union_type) return inner;
      // A union: prefer the alternative that is (or holds) a lock at this offset.
      if (inner.is_lock) return inner;
      if (!first) first = inner;
    } while (dwarf_siblingof(&member, &member) == 0);
    return first ? *first : here;
  }
  if (tag == DW_TAG_array_type) {
    Dwarf_Die element;
    if (!follow_type(&peeled.core, &element)) return here;
    const uint64_t element_size = type_size(element);
    const ArrayDims dims = array_dims(&peeled.core);
    if (element_size == 0 || dims.counts.empty()) return here;
    std::string indexed = path;
    uint64_t rest = offset;
    for (size_t i = 0; i < dims.counts.size(); ++i) {
      uint64_t stride = element_size;
      for (size_t j = i + 1; j < dims.counts.size(); ++j) stride *= dims.counts[j];
      if (stride == 0) return here;
      const uint64_t index = rest / stride;
      if (dims.counts[i] != 0 && index >= dims.counts[i]) return here;
      indexed += '[';
      indexed += std::to_string(index);
      indexed += ']';
      rest %= stride;
    }
    return describe(element, rest, indexed, depth + 1, seen);
  }
  return here;
}

// Lexically removes "." and "dir/.." so paths from different line-table directories compare.
std::string normalize_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  const bool absolute = !path.empty() && path[0] == '/';
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part == "..") {
      if (!parts.empty() && parts.back() != "..")
        parts.pop_back();
      else if (!absolute)
        parts.push_back(part);
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  std::string out = absolute ? "/" : "";
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? "/" : "") + parts[i];
  return out;
}

bool has_pc_attributes(Dwarf_Die* die) { return dwarf_hasattr(die, DW_AT_low_pc) || dwarf_hasattr(die, DW_AT_ranges); }

// Finds the inlined subroutine directly below `scope` (through lexical blocks) that contains pc.
bool find_inline_below(Dwarf_Die* scope, uint64_t pc, Dwarf_Die* result, int depth) {
  if (depth > kMaxTypeDepth) return false;
  Dwarf_Die child;
  if (dwarf_child(scope, &child) != 0) return false;
  do {
    const int tag = dwarf_tag(&child);
    if (tag == DW_TAG_inlined_subroutine && dwarf_haspc(&child, pc) == 1) {
      *result = child;
      return true;
    }
    if (tag == DW_TAG_lexical_block && (!has_pc_attributes(&child) || dwarf_haspc(&child, pc) == 1)) {
      if (find_inline_below(&child, pc, result, depth + 1)) return true;
    }
  } while (dwarf_siblingof(&child, &child) == 0);
  return false;
}

}  // namespace

bool is_lock_type_name(std::string_view name) {
  static constexpr std::array<std::string_view, 20> kNames = {
      // typedefs
      "spinlock_t", "raw_spinlock_t", "rwlock_t", "arch_spinlock_t", "arch_rwlock_t", "seqlock_t", "local_lock_t",
      // struct tags
      "spinlock", "raw_spinlock", "qspinlock", "qrwlock", "mutex", "rw_semaphore", "semaphore", "rt_mutex",
      "rt_mutex_base", "ww_mutex", "percpu_rw_semaphore", "rwlock", "local_lock"};
  return std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

DwarfIndex::DwarfIndex(Elf* elf, Dwarf* whole) : elf_(elf), whole_(whole) {
  size_t names_index = 0;
  size_t file_size = 0;
  char* file = elf_rawfile(elf_, &file_size);
  if (file == nullptr || elf_getshdrstrndx(elf_, &names_index) != 0) return;
  uint64_t debug_begin = UINT64_MAX, debug_end = 0;
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type == SHT_NOBITS) continue;
    const char* name = elf_strptr(elf_, names_index, shdr.sh_name);
    if (name == nullptr || std::string_view(name).substr(0, 7) != ".debug_") continue;
    // ElfImage checked that every section lies inside the file.
    debug_begin = std::min<uint64_t>(debug_begin, shdr.sh_offset);
    debug_end = std::max<uint64_t>(debug_end, shdr.sh_offset + shdr.sh_size);
    // A compressed .debug_info has no bytes to view unit by unit; the whole-file Dwarf serves then.
    if (std::string_view(name) == ".debug_info" && (shdr.sh_flags & SHF_COMPRESSED) == 0) {
      info_ = reinterpret_cast<const unsigned char*>(file) + shdr.sh_offset;
      info_size_ = shdr.sh_size;
      info_section_ = elf_ndxscn(scn);
    }
    // Through libelf rather than the file's bytes: libdw may have decompressed it in place.
    if (std::string_view(name) == ".debug_abbrev" && (shdr.sh_flags & SHF_COMPRESSED) == 0) {
      const Elf_Data* data = elf_getdata(scn, nullptr);
      if (data != nullptr && data->d_buf != nullptr) {
        abbrev_ = static_cast<const unsigned char*>(data->d_buf);
        abbrev_size_ = data->d_size;
      }
    }
    for (auto [section, span] :
         {std::pair{".debug_line", &line_sections_.line}, std::pair{".debug_line_str", &line_sections_.line_str},
          std::pair{".debug_str", &line_sections_.str}}) {
      if (std::string_view(name) != section || (shdr.sh_flags & SHF_COMPRESSED) != 0) continue;
      const Elf_Data* data = elf_getdata(scn, nullptr);
      if (data != nullptr && data->d_buf != nullptr)
        *span = {static_cast<const unsigned char*>(data->d_buf), data->d_size};
    }
  }
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  if (debug_begin < debug_end && debug_end <= file_size) {
    const uint64_t aligned = debug_begin / page * page;
    debug_pages_ = file + aligned;
    debug_pages_size_ = debug_end - aligned;
  }
}

DwarfIndex::~DwarfIndex() {
  for (auto& [unit, view] : views_) {
    if (view == nullptr) continue;
    dwarf_end(view->dwarf);
    elf_end(view->elf);
  }
}

// The page faults are the cost, not the bytes: unmapping every few lookups keeps resident memory
// to what the last few touched, and pages a later lookup needs again come back from the page cache.
// How few: on the shared recording's report, every 64 lookups gave a peak RSS of 57 MB and 0.51 s
// of CPU, every 256 65 MB and 0.45 s, every 1024 82 MB and 0.42 s (libdw's sorted line tables
// held 86 MB before lockscope read line programs itself); the goal is 150 MB.
void DwarfIndex::release_pages_now_and_then() {
  constexpr unsigned kLookupsBetweenReleases = 1024;
  if (++lookups_since_release_ >= kLookupsBetweenReleases) release_pages();
}

void DwarfIndex::release_pages() {
  lookups_since_release_ = 0;
  if (debug_pages_ != nullptr) madvise(debug_pages_, debug_pages_size_, MADV_DONTNEED);
}

// .debug_aranges: per unit, a header and (address, length) pairs ending in (0, 0). Read here
// instead of with dwarf_getaranges, which opens every unit to find its DIE.
void DwarfIndex::read_code_ranges() {
  if (code_ranges_read_) return;
  code_ranges_read_ = true;
  Elf_Scn* scn = nullptr;
  size_t names_index = 0;
  if (elf_getshdrstrndx(elf_, &names_index) != 0) return;
  Elf_Data* data = nullptr;
  while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
    GElf_Shdr shdr;
    const char* name = gelf_getshdr(scn, &shdr) != nullptr ? elf_strptr(elf_, names_index, shdr.sh_name) : nullptr;
    if (name != nullptr && std::string_view(name) == ".debug_aranges") {
      data = elf_getdata(scn, nullptr);
      break;
    }
  }
  if (data == nullptr || data->d_buf == nullptr) return;
  const auto* bytes = static_cast<const unsigned char*>(data->d_buf);
  const uint64_t size = data->d_size;
  auto read = [&](uint64_t at, size_t width) {  // little-endian, as the x86-64 vmlinux is
    uint64_t value = 0;
    for (size_t i = 0; i < width; ++i) value |= uint64_t{bytes[at + i]} << (8 * i);
    return value;
  };
  uint64_t set = 0;
  while (size - set >= 4) {
    uint64_t length = read(set, 4);
    uint64_t header = 4;
    size_t offset_size = 4;
    if (length == 0xffffffff) {
      if (size - set < 12) break;
      length = read(set + 4, 8);
      header = 12;
      offset_size = 8;
    }
    if (length > size - set - header) break;
    const uint64_t end = set + header + length;
    uint64_t at = set + header;
    // version (2), unit offset, address size (1), segment selector size (1)
    if (end - at < 2 + offset_size + 2) break;
    const Dwarf_Off unit = read(at + 2, offset_size);
    const size_t address_size = bytes[at + 2 + offset_size];
    at += 2 + offset_size + 2;
    if (address_size != 8) break;
    // The pairs start at a multiple of their size from the start of the set.
    const uint64_t tuple = 2 * address_size;
    at = set + (at - set + tuple - 1) / tuple * tuple;
    for (; at <= end && end - at >= tuple; at += tuple) {
      const uint64_t low = read(at, 8), count = read(at + 8, 8);
      if (low == 0 && count == 0) break;
      if (count != 0 && low + count > low) code_ranges_.push_back({low, low + count, unit});
    }
    set = end;
  }
  std::sort(code_ranges_.begin(), code_ranges_.end(),
            [](const CodeRange& a, const CodeRange& b) { return a.low < b.low; });
}

std::optional<Dwarf_Off> DwarfIndex::unit_of_code(uint64_t address) {
  read_code_ranges();
  auto it = std::upper_bound(code_ranges_.begin(), code_ranges_.end(), address,
                             [](uint64_t a, const CodeRange& r) { return a < r.low; });
  if (it == code_ranges_.begin() || address >= (it - 1)->high) return std::nullopt;
  return (it - 1)->unit;
}

DwarfIndex::UnitView* DwarfIndex::view_of(Dwarf_Off unit) {
  auto it = views_.find(unit);
  if (it == views_.end()) it = views_.emplace(unit, open_view(unit)).first;
  return it->second.get();
}

// libelf parses the mapped file again (headers only, already resident) so that this Dwarf gets an
// Elf_Data of its own for .debug_info, which is narrowed to the unit.
std::optional<uint64_t> DwarfIndex::unit_size(Dwarf_Off unit) const {
  if (info_ == nullptr || unit >= info_size_ || info_size_ - unit < 4) return std::nullopt;
  uint64_t length = 0;
  uint64_t header = 4;
  uint32_t length32 = 0;
  std::memcpy(&length32, info_ + unit, 4);  // little-endian, as the x86-64 vmlinux is
  if (length32 == 0xffffffff) {
    if (info_size_ - unit < 12) return std::nullopt;
    std::memcpy(&length, info_ + unit + 4, 8);
    header = 12;
  } else if (length32 >= 0xfffffff0) {
    return std::nullopt;  // reserved values
  } else {
    length = length32;
  }
  if (length > info_size_ - unit - header) return std::nullopt;
  return header + length;
}

// The unit header: length, version, then the abbreviation offset (DWARF 2-4) or unit type, address
// size and abbreviation offset (DWARF 5).
bool DwarfIndex::refers_only_inside(Dwarf_Off unit, uint64_t size) {
  const unsigned char* header = info_ + unit;  // unit_size checked [unit, unit + size) is in .debug_info
  uint32_t length32 = 0;
  std::memcpy(&length32, header, 4);
  const uint64_t offset_size = length32 == 0xffffffff ? 8 : 4;
  uint64_t at = length32 == 0xffffffff ? 12 : 4;
  if (size - at < 2) return false;
  uint16_t version = 0;
  std::memcpy(&version, header + at, 2);  // little-endian, as the x86-64 vmlinux is
  at += 2;
  if (version < 2 || version > 5) return false;
  if (version == 5) at += 2;
  if (size < at || size - at < offset_size) return false;
  uint64_t abbrev_offset = 0;
  std::memcpy(&abbrev_offset, header + at, offset_size);
  auto it = abbrevs_checked_.find(abbrev_offset);
  if (it == abbrevs_checked_.end())
    it = abbrevs_checked_.emplace(abbrev_offset, abbrevs_refer_only_inside(abbrev_offset)).first;
  return it->second;
}

// An abbreviation table: entries of (code, tag, children flag, (attribute, form)... 0 0), ended by
// code 0. DW_FORM_implicit_const carries a signed LEB128 value after the form.
bool DwarfIndex::abbrevs_refer_only_inside(uint64_t offset) const {
  if (abbrev_ == nullptr || offset >= abbrev_size_) return false;
  uint64_t at = offset;
  // Unsigned; a signed one is only skipped. Padded encodings are allowed up to 16 bytes.
  auto leb128 = [&](uint64_t* value) {
    *value = 0;
    for (unsigned shift = 0; at < abbrev_size_ && shift < 16 * 7; shift += 7) {
      const unsigned char byte = abbrev_[at++];
      if (shift < 64) *value |= uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  };
  for (;;) {
    uint64_t code = 0, tag = 0;
    if (!leb128(&code)) return false;
    if (code == 0) return true;
    if (!leb128(&tag) || at >= abbrev_size_) return false;
    ++at;  // DW_CHILDREN_yes or _no
    for (;;) {
      uint64_t attribute = 0, form = 0, implicit = 0;
      if (!leb128(&attribute) || !leb128(&form)) return false;
      if (attribute == 0 && form == 0) break;
      switch (form) {
        case DW_FORM_ref_addr:     // a DIE anywhere in .debug_info (LTO, dwz's partial units)
        case DW_FORM_ref_sig8:     // a type unit
        case DW_FORM_GNU_ref_alt:  // dwz's supplementary file
        case DW_FORM_GNU_strp_alt:
        case DW_FORM_ref_sup4:  // DWARF 5 supplementary file
        case DW_FORM_ref_sup8:
        case DW_FORM_strp_sup:
        case DW_FORM_indirect:  // the form is in the DIE: any of the above
          return false;
        case DW_FORM_implicit_const:
          if (!leb128(&implicit)) return false;
          break;
        default: break;
      }
    }
  }
}

std::unique_ptr<DwarfIndex::UnitView> DwarfIndex::open_view(Dwarf_Off unit) {
  const std::optional<uint64_t> size = unit_size(unit);
  if (!size || !refers_only_inside(unit, *size)) return nullptr;
  size_t file_size = 0;
  char* file = elf_rawfile(elf_, &file_size);
  Elf* elf = file != nullptr ? elf_memory(file, file_size) : nullptr;
  if (elf == nullptr) return nullptr;
  Elf_Scn* scn = elf_getscn(elf, info_section_);
  Elf_Data* data = scn != nullptr ? elf_getdata(scn, nullptr) : nullptr;
  if (data == nullptr || data->d_buf != info_ || data->d_size != info_size_) {
    elf_end(elf);
    return nullptr;
  }
  data->d_buf = const_cast<unsigned char*>(info_ + unit);
  data->d_size = *size;
  Dwarf* dwarf = dwarf_begin_elf(elf, DWARF_C_READ, nullptr);
  Dwarf_Off next = 0;
  size_t header_size = 0;
  if (dwarf == nullptr ||
      dwarf_next_unit(dwarf, 0, &next, &header_size, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) != 0) {
    if (dwarf != nullptr) dwarf_end(dwarf);
    elf_end(elf);
    return nullptr;
  }
  auto view = std::make_unique<UnitView>();
  view->elf = elf;
  view->dwarf = dwarf;
  view->unit = unit;
  view->cu_die = unit + header_size;
  return view;
}

DwarfIndex::UnitView* DwarfIndex::opened_view(Dwarf_Off unit) const {
  auto it = views_.find(unit);
  return it != views_.end() ? it->second.get() : nullptr;
}

// Through the unit's view when one is open; the full scans go through the whole-file Dwarf and do
// not open thousands of views.
bool DwarfIndex::open_die(Dwarf_Off unit, Dwarf_Off die, Dwarf_Die* out) {
  if (UnitView* view = opened_view(unit); view != nullptr && die >= unit)
    return dwarf_offdie(view->dwarf, die - unit, out) != nullptr;
  return dwarf_offdie(whole_, die, out) != nullptr;
}

bool DwarfIndex::open_unit_die(Dwarf_Off unit, Dwarf_Die* out) {
  if (UnitView* view = opened_view(unit)) return dwarf_offdie(view->dwarf, view->cu_die - unit, out) != nullptr;
  Dwarf_Off next = 0;
  size_t header_size = 0;
  if (dwarf_next_unit(whole_, unit, &next, &header_size, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) != 0)
    return false;
  return dwarf_offdie(whole_, unit + header_size, out) != nullptr;
}

void DwarfIndex::add_if_located(Dwarf_Die* die, Dwarf_Off unit, Dwarf_Off die_base, const std::string& function,
                                bool in_inner_block) {
  Dwarf_Attribute attr;
  if (dwarf_attr(die, DW_AT_location, &attr) == nullptr) return;
  Dwarf_Op* ops = nullptr;
  size_t count = 0;
  if (dwarf_getlocation(&attr, &ops, &count) != 0 || count != 1 || ops[0].atom != DW_OP_addr) return;
  variables_.emplace(ops[0].number, Located{die_base + dwarf_dieoffset(die), unit, function, in_inner_block});
}

void DwarfIndex::index_unit_top_level(Dwarf_Off unit, Dwarf_Die* cu_die, Dwarf_Off die_base) {
  if (!top_level_units_.insert(unit).second) return;
  Dwarf_Die child;
  if (dwarf_child(cu_die, &child) != 0) return;
  do {
    if (dwarf_tag(&child) == DW_TAG_variable) add_if_located(&child, unit, die_base, "", false);
  } while (dwarf_siblingof(&child, &child) == 0);
}

void DwarfIndex::index_top_level_variables() {
  top_level_indexed_ = true;
  Dwarf_Off unit = 0, next = 0;
  size_t header_size = 0;
  while (dwarf_next_unit(whole_, unit, &next, &header_size, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) ==
         0) {
    Dwarf_Die cu_die;
    if (dwarf_offdie(whole_, unit + header_size, &cu_die) != nullptr &&
        (dwarf_tag(&cu_die) == DW_TAG_compile_unit || dwarf_tag(&cu_die) == DW_TAG_partial_unit)) {
      const char* name = dwarf_diename(&cu_die);
      units_.push_back({unit, name != nullptr ? name : ""});
      index_unit_top_level(unit, &cu_die, 0);
    }
    constexpr size_t kUnitsBetweenReleases = 64;
    if (units_.size() % kUnitsBetweenReleases == 0) release_pages();
    unit = next;
  }
}

// `in_inner_block`: a lexical block or an inlined body lies between `parent` and the subprogram
// that `function` names. gdb resolves `function::var` in the function's outermost block only (and
// then in the file and global scopes), so a static below it is out of reach of that spelling.
void DwarfIndex::walk_for_statics(Dwarf_Die* parent, Dwarf_Off unit, Dwarf_Off die_base, const std::string& function,
                                  bool in_inner_block, int depth) {
  if (depth > kMaxTypeDepth) return;
  Dwarf_Die child;
  if (dwarf_child(parent, &child) != 0) return;
  do {
    const int tag = dwarf_tag(&child);
    if (tag == DW_TAG_variable) {
      // Depth 0 is the CU itself: its variables are in the index already (index_whole_unit).
      if (depth > 0) add_if_located(&child, unit, die_base, function, in_inner_block);
    } else if (tag == DW_TAG_subprogram) {
      const char* name = dwarf_diename(&child);
      walk_for_statics(&child, unit, die_base, name != nullptr ? name : function, false, depth + 1);
    } else if (tag == DW_TAG_lexical_block || tag == DW_TAG_inlined_subroutine) {
      // gdb makes an inlined body a block of its own too, so it counts as an inner block.
      walk_for_statics(&child, unit, die_base, function, true, depth + 1);
    }
  } while (dwarf_siblingof(&child, &child) == 0);
}

void DwarfIndex::index_whole_unit(Dwarf_Off unit) {
  if (!walked_units_.insert(unit).second) return;
  UnitView* view = view_of(unit);
  const Dwarf_Off die_base = view != nullptr ? unit : 0;
  Dwarf_Die cu_die;
  if (!open_unit_die(unit, &cu_die)) return;
  index_unit_top_level(unit, &cu_die, die_base);
  walk_for_statics(&cu_die, unit, die_base, "", false, 0);
}

std::optional<DwarfVariable> DwarfIndex::describe_variable(const Located& located) {
  Dwarf_Die die, cu_die, type;
  if (!open_die(located.unit, located.die, &die)) return std::nullopt;
  DwarfVariable variable;
  variable.unit = located.unit;
  variable.die = located.die;
  const char* name = dwarf_diename(&die);
  if (name == nullptr) return std::nullopt;
  variable.name = name;
  variable.function = located.function;
  variable.in_inner_block = located.in_inner_block;
  if (open_unit_die(located.unit, &cu_die)) {
    const char* cu_name = dwarf_diename(&cu_die);
    if (cu_name != nullptr) variable.cu_name = cu_name;
  }
  if (follow_type(&die, &type)) {
    variable.size = type_size(type);
    variable.type = type_display(type);
  }
  return variable;
}

const DwarfIndex::Located* DwarfIndex::choose_variable(uint64_t address, uint64_t offset, std::string_view wanted,
                                                       bool* named_as_wanted) {
  // Thousands of DIEs can share an address (the linker leaves DW_OP_addr 0 for discarded
  // objects, and per-cpu offset 0 is a real variable), so names are compared before anything is
  // described. Within each preference the lowest DIE offset wins: the multimap's order among equal
  // keys is unspecified, and the answer must not depend on it.
  const Located* named = nullptr;
  const Located* covering = nullptr;
  const Located* first = nullptr;
  auto earlier = [](const Located& candidate, const Located* best) {
    return best == nullptr || candidate.die < best->die;
  };
  auto [begin, end] = variables_.equal_range(address);
  for (auto it = begin; it != end; ++it) {
    const Located& candidate = it->second;
    Dwarf_Die die, type;
    if (!open_die(candidate.unit, candidate.die, &die)) continue;
    const char* name = dwarf_diename(&die);
    if (name == nullptr) continue;
    if (name == wanted) {
      if (earlier(candidate, named)) named = &candidate;
    } else if (named == nullptr) {
      if (earlier(candidate, covering) && follow_type(&die, &type) && offset < type_size(type)) covering = &candidate;
      if (earlier(candidate, first)) first = &candidate;
    }
  }
  *named_as_wanted = named != nullptr;
  return named != nullptr ? named : covering != nullptr ? covering : first;
}

std::optional<DwarfVariable> DwarfIndex::variable_at(uint64_t address, uint64_t offset, std::string_view symbol_name,
                                                     std::string_view file_hint,
                                                     const std::vector<uint64_t>& code_of_its_file) {
  release_pages_now_and_then();
  // gcc gives a function-local static `lock` the ELF name `lock.1`.
  std::string_view wanted = symbol_name;
  const size_t dot = wanted.rfind('.');
  if (dot != std::string_view::npos && dot + 1 < wanted.size() &&
      wanted.find_first_not_of("0123456789", dot + 1) == std::string_view::npos)
    wanted = wanted.substr(0, dot);
  bool named_as_wanted = false;
  const Located* chosen = nullptr;
  // First the units of the variable's own object file. A variable with a fixed address is defined
  // in one unit only, so a DIE named as wanted there is the one the full scan below would choose.
  // Address 0 is the exception (the linker leaves DW_OP_addr 0 for discarded objects everywhere).
  std::vector<Dwarf_Off> candidates;
  for (uint64_t code : code_of_its_file) {
    const std::optional<Dwarf_Off> unit = unit_of_code(code);
    if (unit && std::find(candidates.begin(), candidates.end(), *unit) == candidates.end()) candidates.push_back(*unit);
  }
  auto index_top_levels = [&] {
    for (Dwarf_Off unit : candidates) {
      // A unit that cannot be viewed alone (see refers_only_inside) is read through the whole file.
      const Dwarf_Off die_base = view_of(unit) != nullptr ? unit : 0;
      Dwarf_Die cu_die;
      if (open_unit_die(unit, &cu_die)) index_unit_top_level(unit, &cu_die, die_base);
    }
    chosen = choose_variable(address, offset, wanted, &named_as_wanted);
  };
  if (address != 0 && !candidates.empty()) {
    index_top_levels();
    if (!named_as_wanted && file_hint.empty() && candidates.size() > 1) {
      // A global of an object file without statics next to it (pgd_lock, alone in fault.o's .bss):
      // units follow the link order, as the sections do, so it is in a unit between the neighbours'.
      const auto [low, high] = std::minmax_element(candidates.begin(), candidates.end());
      constexpr size_t kMaxUnitsBetween = 1024;
      std::vector<Dwarf_Off> between;
      for (Dwarf_Off unit = *low; unit < *high && between.size() < kMaxUnitsBetween;) {
        const std::optional<uint64_t> size = unit_size(unit);
        if (!size) break;
        between.push_back(unit);
        unit += *size;
      }
      candidates = std::move(between);
      index_top_levels();
    }
    if (!named_as_wanted && !file_hint.empty()) {
      for (Dwarf_Off unit : candidates) index_whole_unit(unit);
      chosen = choose_variable(address, offset, wanted, &named_as_wanted);
    }
    if (named_as_wanted) return describe_variable(*chosen);
  }
  // Every unit's top level, then for a function-local static every unit of a file with its name.
  if (!top_level_indexed_) index_top_level_variables();
  chosen = choose_variable(address, offset, wanted, &named_as_wanted);
  if (!named_as_wanted && !file_hint.empty()) {
    // A function-local static: walk the whole of each CU whose source file has that base name.
    for (const CompileUnit& unit : units_) {
      const std::string_view name = unit.name;
      const size_t slash = name.rfind('/');
      const std::string_view base = slash == std::string_view::npos ? name : name.substr(slash + 1);
      if (base == file_hint) index_whole_unit(unit.unit);
    }
    chosen = choose_variable(address, offset, wanted, &named_as_wanted);
  }
  if (chosen == nullptr) return std::nullopt;
  return describe_variable(*chosen);
}

MemberPath DwarfIndex::member_path(const DwarfVariable& variable, uint64_t offset) {
  Dwarf_Die die, type;
  if (!open_die(variable.unit, variable.die, &die) || !follow_type(&die, &type)) return {"", "", false, offset};
  std::vector<std::pair<Dwarf_Off, uint64_t>> seen;
  return describe(type, offset, "", 0, seen);
}

const std::vector<DwarfIndex::Subprogram>& DwarfIndex::subprograms_of(Dwarf_Off unit, Dwarf_Die* cu_die) {
  auto it = subprograms_.find(unit);
  if (it != subprograms_.end()) return it->second;
  std::vector<Subprogram> list;
  Dwarf_Die child;
  if (dwarf_child(cu_die, &child) == 0) {
    do {
      if (dwarf_tag(&child) != DW_TAG_subprogram) continue;
      Dwarf_Addr base = 0, low = 0, high = 0;
      ptrdiff_t next = 0;
      while ((next = dwarf_ranges(&child, next, &base, &low, &high)) > 0)
        list.push_back({low, high, dwarf_dieoffset(&child)});
    } while (dwarf_siblingof(&child, &child) == 0);
  }
  std::sort(list.begin(), list.end(), [](const Subprogram& a, const Subprogram& b) { return a.low < b.low; });
  return subprograms_.emplace(unit, std::move(list)).first->second;
}

// The kernel's CUs are named relative to the source tree ("kernel/ucount.c") while the line table
// holds absolute paths; the source root is the line-table path of the CU's own file minus its name.
const std::string& DwarfIndex::source_root_of(Dwarf_Off unit, Dwarf_Die* cu_die) {
  auto it = source_roots_.find(unit);
  if (it != source_roots_.end()) return it->second;
  std::string root;
  const char* cu_name = dwarf_diename(cu_die);
  const LineTable* table = line_table_of(unit, cu_die);
  if (cu_name != nullptr && cu_name[0] != '/' && table != nullptr) {
    std::string suffix = "/";
    suffix += normalize_path(cu_name);
    for (const std::string& raw : table->files()) {
      const std::string path = normalize_path(raw);
      if (path.size() > suffix.size() && path.compare(path.size() - suffix.size(), suffix.size(), suffix) == 0) {
        root = path.substr(0, path.size() - suffix.size() + 1);  // keeps the trailing '/'
        break;
      }
    }
  }
  if (root.empty()) {
    Dwarf_Attribute attr;
    const char* comp_dir = dwarf_formstring(dwarf_attr(cu_die, DW_AT_comp_dir, &attr));
    if (comp_dir != nullptr) root = normalize_path(comp_dir) + "/";
  }
  return source_roots_.emplace(unit, std::move(root)).first->second;
}

// Read on first use and kept: a few kilobytes of checkpoints per unit (see line_table.hpp).
const LineTable* DwarfIndex::line_table_of(Dwarf_Off unit, Dwarf_Die* cu_die) {
  auto it = line_tables_.find(unit);
  if (it != line_tables_.end()) return it->second.get();
  std::unique_ptr<LineTable> table;
  Dwarf_Attribute attr;
  Dwarf_Word offset = 0;
  Dwarf_Die cu;
  uint8_t address_size = 0, offset_size = 0;
  if (dwarf_formudata(dwarf_attr(cu_die, DW_AT_stmt_list, &attr), &offset) == 0 &&
      dwarf_diecu(cu_die, &cu, &address_size, &offset_size) != nullptr) {
    const char* comp_dir = dwarf_formstring(dwarf_attr(cu_die, DW_AT_comp_dir, &attr));
    if (std::optional<LineTable> read = LineTable::read(line_sections_, offset, comp_dir, address_size))
      table = std::make_unique<LineTable>(std::move(*read));
  }
  return line_tables_.emplace(unit, std::move(table)).first->second.get();
}

std::string DwarfIndex::source_path(Dwarf_Off unit, Dwarf_Die* cu_die, const char* raw_path) {
  if (raw_path == nullptr) return "";
  std::string path = normalize_path(raw_path);
  const std::string& root = source_root_of(unit, cu_die);
  if (!root.empty() && path.size() > root.size() && path.compare(0, root.size(), root) == 0)
    return path.substr(root.size());
  return path;
}

void DwarfIndex::describe_code(uint64_t address, CodeLocation& out) {
  release_pages_now_and_then();
  const std::optional<Dwarf_Off> unit = unit_of_code(address);
  if (!unit) return;
  // The unit's own Dwarf, or the whole file's when it cannot be viewed alone.
  const UnitView* view = view_of(*unit);
  Dwarf* dwarf = view != nullptr ? view->dwarf : whole_;
  Dwarf_Die cu_die;
  if (!open_unit_die(*unit, &cu_die)) return;
  const LineTable* table = line_table_of(*unit, &cu_die);
  auto file_name = [&](uint64_t index) -> const char* {
    return table != nullptr && index < table->files().size() ? table->files()[index].c_str() : nullptr;
  };
  std::string line_file;
  int line_number = 0;
  if (const std::optional<LineRow> row = table != nullptr ? table->row_at(address) : std::nullopt) {
    line_file = source_path(*unit, &cu_die, file_name(row->file));
    line_number = row->line;
  }
  // The subprogram containing the address, then the chain of inlined subroutines inside it.
  std::vector<Dwarf_Die> chain;
  const std::vector<Subprogram>& list = subprograms_of(*unit, &cu_die);
  auto it =
      std::upper_bound(list.begin(), list.end(), address, [](uint64_t a, const Subprogram& s) { return a < s.low; });
  for (int steps = 0; it != list.begin() && steps < 8; ++steps) {
    --it;
    if (address >= it->low && address < it->high) {
      Dwarf_Die scope;
      if (dwarf_offdie(dwarf, it->die, &scope) == nullptr) break;
      Dwarf_Die inlined;
      while (chain.size() < 64 && find_inline_below(&scope, address, &inlined, 0)) {
        chain.push_back(inlined);
        scope = inlined;
      }
      break;
    }
  }
  auto call_site = [&](Dwarf_Die* inlined, std::string& file, int& line_no) {
    Dwarf_Attribute attr;
    Dwarf_Word index = 0, number = 0;
    file.clear();
    line_no = 0;
    if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_file, &attr), &index) == 0)
      file = source_path(*unit, &cu_die, file_name(index));
    if (dwarf_formudata(dwarf_attr(inlined, DW_AT_call_line, &attr), &number) == 0) line_no = static_cast<int>(number);
  };
  std::string file = line_file;
  int line_no = line_number;
  for (size_t i = chain.size(); i-- > 0;) {
    const char* name = dwarf_diename(&chain[i]);
    out.inlines.push_back({name != nullptr ? name : "??", file, line_no});
    call_site(&chain[i], file, line_no);
  }
  out.file = file;
  out.line = line_no;
}

}  // namespace lockscope::symbolizer
