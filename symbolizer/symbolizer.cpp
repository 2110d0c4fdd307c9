#include "lockscope/symbolizer.hpp"

#include <elfutils/libdw.h>

#include <cstdio>
#include <memory>
#include <unordered_map>

#include "dwarf_index.hpp"
#include "elf_image.hpp"
#include "lockscope/error.hpp"

namespace lockscope::symbolizer {

std::string CodeLocation::name() const { return function + "+" + hex_address(offset); }

namespace {

class VmlinuxSymbolizer final : public Symbolizer {
 public:
  explicit VmlinuxSymbolizer(const std::string& path) : elf_(path) {
    dwarf_ = dwarf_begin_elf(elf_.elf(), DWARF_C_READ, nullptr);
    if (dwarf_ == nullptr) {
      warnings_.push_back(path + ": no DWARF debug info (" + dwarf_errmsg(-1) +
                          "); naming from the ELF symbol table only, without member paths, inlines or lines");
    } else {
      index_ = std::make_unique<DwarfIndex>(elf_.elf(), dwarf_);
    }
  }
  ~VmlinuxSymbolizer() override {
    index_.reset();
    if (dwarf_ != nullptr) dwarf_end(dwarf_);
  }

  void set_relocation(int64_t relocation) override {
    relocation_ = relocation;
    data_cache_.clear();
    code_cache_.clear();
  }
  int64_t relocation() const override { return relocation_; }
  void set_percpu_offsets(std::vector<uint64_t> offsets_by_cpu) override {
    percpu_offsets_ = std::move(offsets_by_cpu);
    data_cache_.clear();
  }
  uint64_t text_address() const override { return elf_.text_address(); }
  std::string build_id() const override { return elf_.build_id(); }
  const std::vector<std::string>& warnings() const override { return warnings_; }

  bool check_build_id(const std::string& expected_hex) override {
    if (expected_hex.empty() || elf_.build_id().empty() || expected_hex == elf_.build_id()) return true;
    warnings_.push_back("build-id mismatch: the recording's kernel has " + expected_hex + " but " + elf_.path() +
                        " has " + elf_.build_id() + "; names may be wrong");
    return false;
  }

  bool is_code(uint64_t runtime_address) override {
    const SectionInfo* section = elf_.section_at(runtime_address - static_cast<uint64_t>(relocation_));
    return section != nullptr && section->executable;
  }

  std::optional<uint64_t> address_of(std::string_view symbol) override {
    auto address = elf_.address_of(symbol);
    if (!address) return std::nullopt;
    return *address + static_cast<uint64_t>(relocation_);
  }

  void warm_up() override {
    elf_.index_names();
    if (index_ != nullptr) index_->read_code_ranges();
  }

  DataName name_data(uint64_t runtime_address) override {
    auto cached = data_cache_.find(runtime_address);
    if (cached != data_cache_.end()) return cached->second;
    return data_cache_.emplace(runtime_address, lookup_data(runtime_address)).first->second;
  }

  CodeLocation name_code(uint64_t runtime_address) override {
    auto cached = code_cache_.find(runtime_address);
    if (cached != code_cache_.end()) return cached->second;
    return code_cache_.emplace(runtime_address, lookup_code(runtime_address)).first->second;
  }

 private:
  // Per-cpu variables sit at offsets from 0 that KASLR does not move; everything else moves.
  uint64_t link_address(uint64_t runtime_address) const {
    const SectionInfo* percpu = elf_.percpu_section();
    if (percpu != nullptr && runtime_address < percpu->size) return runtime_address;
    return runtime_address - static_cast<uint64_t>(relocation_);
  }

  // gdb (and crash) evaluate `name` only when it is unambiguous: a name defined in several files
  // gets the file qualifier, a function-local static its function.
  std::string gdb_name(const DwarfVariable& variable, uint64_t link_address) const {
    if (!variable.function.empty() && (variable.in_inner_block || !elf_.has_function(variable.function))) {
      // gdb cannot reach the static as `func::lock`: the function was only ever inlined (gdb has no
      // block to look `lock` up in), or the static is declared in an inner `{ }` block, which
      // `func::` does not search. No gdb syntax names a block, so the object is spelled by its type
      // and (link-time) address instead.
      return "(*(" + variable.type + " *)" + hex_address(link_address) + ")";
    }
    if (!variable.function.empty()) {
      std::string name = variable.function + "::" + variable.name;
      if (elf_.count_named(variable.function) > 1 && !variable.cu_name.empty())
        name = "'" + variable.cu_name + "'::" + name;
      return name;
    }
    if (elf_.count_named(variable.name) > 1 && !variable.cu_name.empty())
      return "'" + variable.cu_name + "'::" + variable.name;
    return variable.name;
  }

  DataName lookup_data(uint64_t runtime_address) {
    // A CPU's copy of a per-cpu variable: name the variable at the offset into that CPU's area.
    const SectionInfo* percpu = elf_.percpu_section();
    if (percpu != nullptr && runtime_address >= percpu->size) {
      for (size_t cpu = 0; cpu < percpu_offsets_.size(); ++cpu) {
        const uint64_t offset = runtime_address - percpu_offsets_[cpu];
        if (runtime_address >= percpu_offsets_[cpu] && offset < percpu->size) {
          DataName copy = lookup_data(offset);
          copy.cpu = static_cast<int>(cpu);
          return copy;
        }
      }
    }
    DataName out;
    const uint64_t address = link_address(runtime_address);
    const SymbolHit hit = elf_.data_symbol_at(address);
    if (hit.section == nullptr) {
      out.why_unnamed = "not inside the vmlinux image (a dynamically allocated object, a module, or a per-cpu copy)";
      return out;
    }
    out.section = hit.section->name;
    out.percpu = hit.section == elf_.percpu_section();
    if (hit.symbol == nullptr) {
      out.why_unnamed = "no symbol covers it in section " + out.section;
      return out;
    }
    out.found = true;
    out.symbol = hit.symbol->name;
    out.offset = hit.offset;
    if (index_ != nullptr) {
      // The object file that defines the variable: its own for a static; for a global the one that
      // exports it, else its neighbours'.
      std::vector<uint64_t> code_of_its_file = elf_.code_of_file_group(hit.symbol->file_group);
      if (hit.symbol->global) {
        std::vector<uint32_t> groups = {elf_.file_group_of("__ksymtab_" + std::string(hit.symbol->name))};
        if (groups.front() == 0) groups = elf_.neighbouring_file_groups(hit.symbol->address);
        for (uint32_t group : groups) {
          const std::vector<uint64_t>& code = elf_.code_of_file_group(group);
          code_of_its_file.insert(code_of_its_file.end(), code.begin(), code.end());
        }
      }
      const std::optional<DwarfVariable> variable =
          index_->variable_at(hit.symbol->address, hit.offset, hit.symbol->name,
                              hit.symbol->global ? std::string_view() : hit.symbol->file, code_of_its_file);
      if (variable && (variable->size == 0 || hit.offset < variable->size)) {
        const MemberPath member = index_->member_path(*variable, hit.offset);
        const std::string object = gdb_name(*variable, hit.symbol->address) + member.path;
        // An address inside a member that has no member of its own there (padding, the middle of
        // a long): `object+0x4` is not an expression gdb can take the address of, while a char at
        // that byte is, and says which object it lies in.
        out.name = member.residual == 0 ? object : "*((char *)&" + object + " + " + hex_address(member.residual) + ")";
        out.type = member.type;
        out.is_lock = member.is_lock && member.residual == 0;
        return out;
      }
    }
    out.name = out.symbol;
    if (out.offset != 0) {
      out.name += '+';
      out.name += hex_address(out.offset);
    }
    return out;
  }

  CodeLocation lookup_code(uint64_t runtime_address) {
    CodeLocation out;
    const uint64_t address = runtime_address - static_cast<uint64_t>(relocation_);
    const SymbolHit hit = elf_.code_symbol_at(address);
    if (hit.section == nullptr || !hit.section->executable) {
      out.why_unnamed = "not in the kernel's code";
      return out;
    }
    out.section = hit.section->name;
    if (hit.past_marker != nullptr) {
      out.why_unnamed = "past " + std::string(hit.past_marker->name) + ", which marks the end of a kind of text in " +
                        out.section + ", and before any other symbol";
      return out;
    }
    if (hit.symbol == nullptr) {
      out.why_unnamed = "no function covers it in section " + out.section;
      return out;
    }
    out.found = true;
    out.function = hit.symbol->name;
    out.offset = hit.offset;
    if (index_ != nullptr) index_->describe_code(address, out);
    return out;
  }

  ElfImage elf_;
  Dwarf* dwarf_ = nullptr;
  std::unique_ptr<DwarfIndex> index_;
  int64_t relocation_ = 0;
  std::vector<uint64_t> percpu_offsets_;
  std::vector<std::string> warnings_;
  std::unordered_map<uint64_t, DataName> data_cache_;
  std::unordered_map<uint64_t, CodeLocation> code_cache_;
};

}  // namespace

std::unique_ptr<Symbolizer> Symbolizer::open(const std::string& vmlinux_path) {
  return std::make_unique<VmlinuxSymbolizer>(vmlinux_path);
}

}  // namespace lockscope::symbolizer
