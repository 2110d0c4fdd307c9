// Naming from a /proc/kallsyms-format file: symbols without sizes or types, so a symbol is taken to
// reach up to the next one (as perf does), and a data address is named only by a data symbol.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "elf_image.hpp"
#include "lockscope/error.hpp"
#include "lockscope/symbolizer.hpp"

namespace lockscope::symbolizer {

namespace {

struct KallsymsEntry {
  uint64_t address = 0;
  char type = '?';  // nm-style letter
  std::string name;
};

bool is_text_type(char type) { return type == 't' || type == 'T' || type == 'w' || type == 'W'; }
bool is_data_type(char type) { return std::strchr("dDbBrRgGsSvV", type) != nullptr; }

// Names the kernel gives to section boundaries: nothing past them belongs to the previous symbol.
bool is_boundary(const std::string& name) {
  return name == "_etext" || name == "_edata" || name == "_end" || name == "__bss_stop" || name == "__end_rodata" ||
         name == "__per_cpu_end" || name == "__init_end" || name == "_einittext";
}

// Linker-script markers (__start_SECTION, __stop_SECTION, __init_begin, ...) are all the data
// symbols a kernel without CONFIG_KALLSYMS_ALL lists. They mark where a section begins, not an
// object: naming an address as marker+offset would be a guess.
bool is_section_marker(const std::string& name) {
  return name.starts_with("__start_") || name.starts_with("__stop_") || name.starts_with("__end_") ||
         name == "__init_begin" || name == "__bss_start" || name == "_sdata" || name == "__per_cpu_start";
}

class KallsymsSymbolizer final : public Symbolizer {
 public:
  explicit KallsymsSymbolizer(const std::string& path) : path_(path) {
    std::ifstream in(path);
    if (!in) throw Error(std::string("cannot open: ") + strerror(errno)).file(path);
    std::string line;
    uint64_t line_number = 0;
    bool any_nonzero = false;
    while (std::getline(in, line)) {
      ++line_number;
      if (line.empty()) continue;
      std::istringstream fields(line);
      std::string address_text, type_text, name;
      if (!(fields >> address_text >> type_text >> name) || type_text.size() != 1)
        throw Error("not a kallsyms line: \"" + line.substr(0, 80) + "\"")
            .in("line " + std::to_string(line_number))
            .hint("expected \"ffffffff81000000 T _text\" as in /proc/kallsyms")
            .file(path);
      char* end = nullptr;
      errno = 0;
      const uint64_t address = std::strtoull(address_text.c_str(), &end, 16);
      if (errno != 0 || *end != '\0')
        throw Error("bad address \"" + address_text + "\"").in("line " + std::to_string(line_number)).file(path);
      any_nonzero = any_nonzero || address != 0;
      if (name == "_text") text_address_ = address;
      entries_.push_back({address, type_text[0], name});
    }
    if (entries_.empty()) throw Error("no symbols").file(path).hint("pass a copy of /proc/kallsyms");
    if (!any_nonzero)
      throw Error("every address is 0 (hidden by kptr_restrict)").file(path).hint("copy /proc/kallsyms as root");
    std::stable_sort(entries_.begin(), entries_.end(),
                     [](const KallsymsEntry& a, const KallsymsEntry& b) { return a.address < b.address; });
    has_data_symbols_ = std::any_of(entries_.begin(), entries_.end(), [](const KallsymsEntry& e) {
      return is_data_type(e.type) && e.address >= kFirstKernelAddress && !is_section_marker(e.name);
    });
  }

  void set_relocation(int64_t relocation) override {
    relocation_ = relocation;
    data_cache_.clear();
    code_cache_.clear();
  }
  int64_t relocation() const override { return relocation_; }
  // kallsyms lists per-cpu symbols by offset only when the kernel has CONFIG_KALLSYMS_ALL; runtime
  // per-cpu copies are not named from it.
  void set_percpu_offsets(std::vector<uint64_t>) override {}
  uint64_t text_address() const override { return text_address_; }
  std::string build_id() const override { return ""; }
  const std::vector<std::string>& warnings() const override { return warnings_; }
  bool check_build_id(const std::string&) override { return true; }

  bool is_code(uint64_t runtime_address) override {
    const KallsymsEntry* entry = nearest(runtime_address - static_cast<uint64_t>(relocation_));
    return entry != nullptr && is_text_type(entry->type);
  }

  std::optional<uint64_t> address_of(std::string_view symbol) override {
    for (const KallsymsEntry& entry : entries_) {
      if (entry.name == symbol) return entry.address + static_cast<uint64_t>(relocation_);
    }
    return std::nullopt;
  }

  DataName name_data(uint64_t runtime_address) override {
    auto cached = data_cache_.find(runtime_address);
    if (cached != data_cache_.end()) return cached->second;
    DataName out;
    // Small addresses are per-cpu offsets, which KASLR does not move.
    const bool percpu = runtime_address < kFirstKernelAddress;
    const uint64_t address = percpu ? runtime_address : runtime_address - static_cast<uint64_t>(relocation_);
    const KallsymsEntry* entry = nearest(address);
    if (entry == nullptr || !is_data_type(entry->type) || is_section_marker(entry->name) ||
        (percpu != (entry->address < kFirstKernelAddress))) {
      out.why_unnamed = has_data_symbols_ ? "no data symbol in " + path_ + " covers it"
                                          : path_ + " has no data symbols (the kernel lacks CONFIG_KALLSYMS_ALL)";
    } else {
      out.found = true;
      out.symbol = entry->name;
      out.offset = address - entry->address;
      out.name = out.symbol;
      if (out.offset != 0) {
        out.name += '+';
        out.name += hex_address(out.offset);
      }
      out.percpu = percpu;
    }
    return data_cache_.emplace(runtime_address, out).first->second;
  }

  CodeLocation name_code(uint64_t runtime_address) override {
    auto cached = code_cache_.find(runtime_address);
    if (cached != code_cache_.end()) return cached->second;
    CodeLocation out;
    const KallsymsEntry* entry = nearest(runtime_address - static_cast<uint64_t>(relocation_));
    if (entry == nullptr || !is_text_type(entry->type)) {
      out.why_unnamed = "no text symbol in " + path_ + " covers it";
    } else if (is_text_end_marker(entry->name)) {
      // Without sizes, the nearest symbol is all there is; when it is an end marker, the address is
      // in no function this file knows (often: the kallsyms is another kernel's).
      out.why_unnamed = "past " + entry->name + ", which marks the end of a kind of text in " + path_ +
                        ", and before any other symbol (is it the recorded kernel's kallsyms?)";
    } else {
      out.found = true;
      out.function = entry->name;
      out.offset = runtime_address - static_cast<uint64_t>(relocation_) - entry->address;
    }
    return code_cache_.emplace(runtime_address, out).first->second;
  }

 private:
  static constexpr uint64_t kFirstKernelAddress = 0xffff000000000000ULL;

  // The last symbol at or before the address, unless a section boundary lies in between.
  const KallsymsEntry* nearest(uint64_t address) const {
    auto it = std::upper_bound(entries_.begin(), entries_.end(), address,
                               [](uint64_t a, const KallsymsEntry& e) { return a < e.address; });
    if (it == entries_.begin()) return nullptr;
    const KallsymsEntry* entry = &*(it - 1);
    // Among symbols at one address, one that is not a text end marker: the next kind of text often
    // starts where one ends (__irqentry_text_end is also common_interrupt_return).
    for (auto alias = it - 1; alias->address == entry->address; --alias) {
      if (!is_text_end_marker(alias->name)) {
        entry = &*alias;
        break;
      }
      if (alias == entries_.begin()) break;
    }
    if (is_boundary(entry->name)) return nullptr;
    return entry;
  }

  std::string path_;
  std::vector<KallsymsEntry> entries_;
  bool has_data_symbols_ = false;
  uint64_t text_address_ = 0;
  int64_t relocation_ = 0;
  std::vector<std::string> warnings_;
  std::unordered_map<uint64_t, DataName> data_cache_;
  std::unordered_map<uint64_t, CodeLocation> code_cache_;
};

}  // namespace

std::unique_ptr<Symbolizer> Symbolizer::from_kallsyms(const std::string& kallsyms_path) {
  return std::make_unique<KallsymsSymbolizer>(kallsyms_path);
}

}  // namespace lockscope::symbolizer
