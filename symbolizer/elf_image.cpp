#include "elf_image.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <functional>

#include "lockscope/error.hpp"

namespace lockscope::symbolizer {

std::string to_hex(const unsigned char* bytes, size_t count) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(count * 2);
  for (size_t i = 0; i < count; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 15];
  }
  return out;
}

bool is_text_end_marker(std::string_view name) {
  return name.size() > 11 && name.starts_with("__") && name.ends_with("_text_end");
}

std::string hex_address(uint64_t value) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(value));
  return buf;
}

namespace {

std::string elf_problem() { return elf_errmsg(-1); }

}  // namespace

ElfImage::ElfImage(const std::string& path) : path_(path) {
  if (elf_version(EV_CURRENT) == EV_NONE) throw Error("libelf is too old").file(path);
  fd_ = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd_.valid()) throw Error(std::string("cannot open: ") + strerror(errno)).file(path);
  try {
    struct stat st {};
    if (fstat(fd_.get(), &st) != 0) throw Error(std::string("cannot stat: ") + strerror(errno));
    if (!S_ISREG(st.st_mode)) throw Error("not a regular file").hint("pass the vmlinux file itself");
    unsigned char magic[4] = {};
    if (pread(fd_.get(), magic, 4, 0) != 4 || memcmp(magic, ELFMAG, SELFMAG) != 0)
      throw Error("not an ELF file: expected the magic \\x7fELF")
          .at(0)
          .hint("pass an uncompressed vmlinux (not a vmlinuz/bzImage)");
    if (static_cast<uint64_t>(st.st_size) < sizeof(Elf64_Ehdr))
      throw Error("truncated: expected a " + std::to_string(sizeof(Elf64_Ehdr)) + "-byte ELF header, the file has " +
                  std::to_string(st.st_size) + " bytes")
          .at(0)
          .hint("copy or download the vmlinux again");
    // READ_MMAP: the symbol table and the DWARF we touch are paged in on demand, never copied.
    elf_ = elf_begin(fd_.get(), ELF_C_READ_MMAP, nullptr);
    if (elf_ == nullptr || elf_kind(elf_) != ELF_K_ELF) throw Error("not a readable ELF file: " + elf_problem());
    if (gelf_getclass(elf_) != ELFCLASS64)
      throw Error("not a 64-bit ELF file: expected ELFCLASS64").at(EI_CLASS).hint("lockscope reads x86-64 kernels");
    check_complete(static_cast<uint64_t>(st.st_size));
    read_sections();
    read_symbols();
    read_build_id();
  } catch (Error& e) {
    // The destructor does not run for a constructor that throws; the descriptor closes itself.
    if (elf_ != nullptr) elf_end(elf_);
    e.file(path);
    throw;
  }
}

ElfImage::~ElfImage() {
  if (elf_ != nullptr) elf_end(elf_);  // before fd_ closes (a member, destroyed after this body)
}

// libelf maps the file and trusts the headers' offsets; a truncated vmlinux (an interrupted copy or
// download) would fault later, so every header and section must end inside the file.
void ElfImage::check_complete(uint64_t file_size) {
  GElf_Ehdr ehdr;
  if (gelf_getehdr(elf_, &ehdr) == nullptr) throw Error("bad ELF header: " + elf_problem()).at(0);
  // Sums of header fields are compared without overflowing: a hostile e_shoff is near 2^64.
  const uint64_t headers_size = uint64_t{ehdr.e_shnum} * ehdr.e_shentsize;
  if (ehdr.e_shoff == 0)
    throw Error("no section header table (e_shoff is 0); expected one in a vmlinux")
        .at(offsetof(Elf64_Ehdr, e_shoff))
        .hint("pass the vmlinux itself, not a stripped or partial image");
  if (ehdr.e_shoff > file_size || headers_size > file_size - ehdr.e_shoff)
    throw Error("truncated: expected " + std::to_string(headers_size) +
                " bytes of section headers here but the file has " + std::to_string(file_size))
        .at(ehdr.e_shoff)
        .hint("copy or download the vmlinux again");
  size_t count = 0;
  if (elf_getshdrnum(elf_, &count) != 0) throw Error("bad section headers: " + elf_problem()).at(ehdr.e_shoff);
  for (size_t i = 1; i < count; ++i) {
    GElf_Shdr shdr;
    Elf_Scn* scn = elf_getscn(elf_, i);
    const uint64_t header_offset = ehdr.e_shoff + i * ehdr.e_shentsize;
    if (scn == nullptr || gelf_getshdr(scn, &shdr) == nullptr)
      throw Error("bad section header " + std::to_string(i) + ": " + elf_problem()).at(header_offset);
    if (shdr.sh_type == SHT_NOBITS) continue;
    if (shdr.sh_offset > file_size || shdr.sh_size > file_size - shdr.sh_offset)
      throw Error("truncated: section " + std::to_string(i) + " expects " + std::to_string(shdr.sh_size) +
                  " bytes here but the file has " + std::to_string(file_size))
          .at(shdr.sh_offset)
          .hint("copy or download the vmlinux again");
  }
}

void ElfImage::read_sections() {
  size_t count = 0, names_index = 0;
  if (elf_getshdrnum(elf_, &count) != 0 || elf_getshdrstrndx(elf_, &names_index) != 0)
    throw Error("bad section headers: " + elf_problem());
  sections_.resize(count);
  for (size_t i = 1; i < count; ++i) {
    GElf_Shdr shdr;
    gelf_getshdr(elf_getscn(elf_, i), &shdr);
    const char* name = elf_strptr(elf_, names_index, shdr.sh_name);
    SectionInfo& s = sections_[i];
    s.name = name != nullptr ? name : "";
    s.address = shdr.sh_addr;
    s.size = shdr.sh_size;
    s.executable = (shdr.sh_flags & SHF_EXECINSTR) != 0;
    if ((shdr.sh_flags & SHF_ALLOC) == 0 || shdr.sh_size == 0) continue;
    if (s.name == ".data..percpu" && s.address == 0) {
      percpu_ = &s;
      continue;  // offsets, not addresses: looked up separately
    }
    alloc_sorted_.push_back(&s);
  }
  std::sort(alloc_sorted_.begin(), alloc_sorted_.end(),
            [](const SectionInfo* a, const SectionInfo* b) { return a->address < b->address; });
}

void ElfImage::read_symbols() {
  Elf_Scn* scn = nullptr;
  GElf_Shdr shdr{};
  while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
    if (gelf_getshdr(scn, &shdr) != nullptr && shdr.sh_type == SHT_SYMTAB) break;
  }
  if (scn == nullptr)
    throw Error("no symbol table (.symtab)").hint("use the unstripped vmlinux from the -dbg package, or --kallsyms");
  Elf_Data* data = elf_getdata(scn, nullptr);
  if (data == nullptr) throw Error("cannot read .symtab: " + elf_problem());
  const size_t count = shdr.sh_entsize ? shdr.sh_size / shdr.sh_entsize : 0;
  symbols_.reserve(count);
  std::string_view current_file;
  uint32_t current_group = 0;
  file_group_code_.emplace_back();
  for (size_t i = 1; i < count; ++i) {
    GElf_Sym sym;
    const uint64_t entry_offset = shdr.sh_offset + i * shdr.sh_entsize;
    if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr)
      throw Error("bad symbol " + std::to_string(i) + ": " + elf_problem()).at(entry_offset).in(".symtab");
    const char* name = elf_strptr(elf_, shdr.sh_link, sym.st_name);
    if (name == nullptr)
      throw Error("symbol " + std::to_string(i) + " has name offset " + std::to_string(sym.st_name) +
                  ", expected one inside its string table")
          .at(entry_offset)
          .in(".symtab");
    const int type = GELF_ST_TYPE(sym.st_info);
    const bool global = GELF_ST_BIND(sym.st_info) != STB_LOCAL;
    if (type == STT_FILE) {
      current_file = name;
      current_group = static_cast<uint32_t>(file_group_code_.size());
      file_group_code_.emplace_back();
      continue;
    }
    if (type != STT_OBJECT && type != STT_FUNC && type != STT_NOTYPE && type != STT_TLS) continue;
    if (sym.st_shndx == SHN_UNDEF || sym.st_shndx >= sections_.size() || *name == '\0') continue;
    ElfSymbol s;
    s.address = sym.st_value;
    s.size = sym.st_size;
    s.name = name;
    s.file = global ? std::string_view() : current_file;
    s.file_group = global ? 0 : current_group;
    s.section_index = sym.st_shndx;
    s.type = static_cast<uint8_t>(type);
    s.global = global;
    s.weak = GELF_ST_BIND(sym.st_info) == STB_WEAK;
    s.index = static_cast<uint32_t>(i);
    symbols_.push_back(s);
    // A few are enough: one that .debug_aranges covers finds the unit (see code_of_file_group).
    constexpr size_t kCodePerGroup = 4;
    std::vector<uint64_t>& group_code = file_group_code_[s.file_group];
    if (!global && type == STT_FUNC && sections_[s.section_index].executable && group_code.size() < kCodePerGroup)
      group_code.push_back(s.address);
    if (s.name == "_text") text_address_ = s.address;
  }
  // Among aliases at one address the preferred one sorts last, because lookups walk backwards.
  // The preference is perf's (choose_best_symbol), so frames read as in `perf script`: sized, not
  // weak, global, fewer leading underscores, longer name, earlier in the table.
  auto underscores = [](std::string_view name) { return name.find_first_not_of('_'); };
  auto less_preferred = [&](const ElfSymbol& a, const ElfSymbol& b) {
    if ((a.size != 0) != (b.size != 0)) return a.size == 0;
    if (a.weak != b.weak) return a.weak;
    if (a.global != b.global) return !a.global;
    if (underscores(a.name) != underscores(b.name)) return underscores(a.name) > underscores(b.name);
    if (a.name.size() != b.name.size()) return a.name.size() < b.name.size();
    return a.index > b.index;
  };
  std::sort(symbols_.begin(), symbols_.end(), [&](const ElfSymbol& a, const ElfSymbol& b) {
    if (a.address != b.address) return a.address < b.address;
    return less_preferred(a, b);
  });
}

void ElfImage::read_build_id() {
  Elf_Scn* scn = nullptr;
  while ((scn = elf_nextscn(elf_, scn)) != nullptr) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_NOTE) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (data == nullptr) continue;
    size_t offset = 0, name_offset = 0, desc_offset = 0;
    GElf_Nhdr note;
    while ((offset = gelf_getnote(data, offset, &note, &name_offset, &desc_offset)) > 0) {
      const char* owner = static_cast<const char*>(data->d_buf) + name_offset;
      if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 && memcmp(owner, "GNU", 4) == 0) {
        build_id_ = to_hex(static_cast<const unsigned char*>(data->d_buf) + desc_offset, note.n_descsz);
        return;
      }
    }
  }
}

const SectionInfo* ElfImage::section_at(uint64_t address) const {
  auto it = std::upper_bound(alloc_sorted_.begin(), alloc_sorted_.end(), address,
                             [](uint64_t a, const SectionInfo* s) { return a < s->address; });
  if (it != alloc_sorted_.begin()) {
    const SectionInfo* s = *(it - 1);
    if (address - s->address < s->size) return s;
  }
  if (percpu_ != nullptr && address < percpu_->size) return percpu_;
  return nullptr;
}

SymbolHit ElfImage::data_symbol_at(uint64_t address) const { return symbol_at(address, false); }
SymbolHit ElfImage::code_symbol_at(uint64_t address) const { return symbol_at(address, true); }

SymbolHit ElfImage::symbol_at(uint64_t address, bool want_code) const {
  SymbolHit hit;
  hit.section = section_at(address);
  if (hit.section == nullptr) return hit;
  const size_t section_index = static_cast<size_t>(hit.section - sections_.data());
  auto it = std::upper_bound(symbols_.begin(), symbols_.end(), address,
                             [](uint64_t a, const ElfSymbol& s) { return a < s.address; });
  const ElfSymbol* nearest_unsized = nullptr;
  // A short walk back suffices: symbols nest at most a few deep (aliases, a struct and its parts).
  for (int steps = 0; it != symbols_.begin() && steps < 64; ++steps) {
    const ElfSymbol& s = *--it;
    if (hit.past_marker != nullptr && s.address != hit.past_marker->address) break;
    if (s.section_index != section_index) break;
    const bool is_code = s.type == STT_FUNC;
    const bool is_data = s.type == STT_OBJECT || s.type == STT_TLS;
    if ((want_code && is_data) || (!want_code && is_code)) continue;
    if (s.size > 0 && address - s.address < s.size) {
      hit.symbol = &s;
      break;
    }
    if (s.size == 0 && is_text_end_marker(s.name)) {
      // Past the end of a kind of text: the marker names no function, so neither does marker+off.
      // Another symbol at the marker's address still names it: the next kind of text often starts
      // where one ends (__irqentry_text_end is also common_interrupt_return).
      if (hit.past_marker == nullptr) hit.past_marker = &s;
      continue;
    }
    if (s.size == 0) {
      // Code: the nearest label reaches up to the next symbol, as in perf. Data: keep looking for a
      // sized object around the address, the label being the fallback.
      if (want_code) {
        hit.symbol = &s;
        break;
      }
      if (nearest_unsized == nullptr) nearest_unsized = &s;
      continue;
    }
    // A sized symbol that ends before the address: the address lies in a gap after it.
    break;
  }
  if (hit.symbol == nullptr) hit.symbol = nearest_unsized;
  if (hit.symbol != nullptr) {
    hit.offset = address - hit.symbol->address;
    hit.past_marker = nullptr;
  }
  return hit;
}

void ElfImage::index_names() const {
  if (names_indexed_) return;
  names_indexed_ = true;
  name_hashes_.reserve(symbols_.size());
  for (size_t i = 0; i < symbols_.size(); ++i)
    name_hashes_.emplace_back(std::hash<std::string_view>()(symbols_[i].name), static_cast<uint32_t>(i));
  std::sort(name_hashes_.begin(), name_hashes_.end());
}

std::vector<const ElfSymbol*> ElfImage::named(std::string_view name) const {
  index_names();
  std::vector<const ElfSymbol*> out;
  const size_t hash = std::hash<std::string_view>()(name);
  auto it = std::lower_bound(name_hashes_.begin(), name_hashes_.end(), std::pair<size_t, uint32_t>(hash, 0));
  for (; it != name_hashes_.end() && it->first == hash; ++it) {
    if (symbols_[it->second].name == name) out.push_back(&symbols_[it->second]);
  }
  return out;
}

bool ElfImage::has_function(std::string_view name) const {
  for (const ElfSymbol* symbol : named(name)) {
    if (symbol->type == STT_FUNC) return true;
  }
  return false;
}

uint32_t ElfImage::file_group_of(std::string_view local_name) const {
  for (const ElfSymbol* symbol : named(local_name)) {
    if (symbol->file_group != 0) return symbol->file_group;
  }
  return 0;
}

const std::vector<uint64_t>& ElfImage::code_of_file_group(uint32_t group) const {
  return group < file_group_code_.size() ? file_group_code_[group] : file_group_code_[0];
}

std::vector<uint32_t> ElfImage::neighbouring_file_groups(uint64_t address) const {
  std::vector<uint32_t> groups;
  const SectionInfo* section = section_at(address);
  if (section == nullptr) return groups;
  const size_t section_index = static_cast<size_t>(section - sections_.data());
  auto after = std::upper_bound(symbols_.begin(), symbols_.end(), address,
                                [](uint64_t a, const ElfSymbol& s) { return a < s.address; });
  // Bounded walks: past a few hundred symbols the neighbour says little about the object file.
  constexpr int kMaxSteps = 256;
  auto before = after;
  for (int steps = 0; before != symbols_.begin() && steps < kMaxSteps; ++steps) {
    const ElfSymbol& s = *--before;
    if (s.section_index != section_index) break;
    if (s.file_group != 0) {
      groups.push_back(s.file_group);
      break;
    }
  }
  for (int steps = 0; after != symbols_.end() && steps < kMaxSteps; ++after, ++steps) {
    if (after->section_index != section_index) break;
    if (after->file_group != 0) {
      if (groups.empty() || groups.front() != after->file_group) groups.push_back(after->file_group);
      break;
    }
  }
  return groups;
}

size_t ElfImage::count_named(std::string_view name) const { return named(name).size(); }

}  // namespace lockscope::symbolizer

namespace lockscope::symbolizer {

std::optional<uint64_t> ElfImage::address_of(std::string_view name) const {
  for (const ElfSymbol& symbol : symbols_) {
    if (symbol.name == name) return symbol.address;
  }
  return std::nullopt;
}

}  // namespace lockscope::symbolizer
