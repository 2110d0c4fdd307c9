// Naming the contention table's callers: a CallerNamer on top of the symbolizer that recognises
// perf's lock functions by the kernel's __sched_text and __lock_text bounds. Shared by the
// contention command and the report.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "contention_stats.hpp"
#include "lockscope/symbolizer.hpp"

namespace lockscope::contention {

struct AddressRange {
  uint64_t start = 0, end = 0;
  bool contains(uint64_t address) const { return start <= address && address < end; }
};

// perf's lock functions (machine__is_lock_function): the __sched_text and __lock_text sections,
// found by symbol name; empty when the symbols do not have them.
std::vector<AddressRange> lock_function_ranges(symbolizer::Symbolizer& symbols);

// Names kernel frames with the symbolizer. User frames stay unnamed: perf would name them from
// the process's own binaries, which lockscope does not read (see docs/contention.md).
class SymbolizerCallerNamer final : public CallerNamer {
 public:
  SymbolizerCallerNamer(symbolizer::Symbolizer& symbols, std::vector<AddressRange> lock_text)
      : symbols_(symbols), lock_text_(std::move(lock_text)) {}

  bool has_symbol(const Frame& frame) override { return frame.kernel && lookup(frame).found; }
  bool is_lock_function(const Frame& frame) override {
    for (const AddressRange& range : lock_text_) {
      if (range.contains(frame.address)) return true;
    }
    return false;
  }
  std::string name(const Frame& frame) override {
    const Named& named = lookup(frame);
    if (named.offset == 0) return named.function;
    char offset[24];
    snprintf(offset, sizeof offset, "+0x%llx", static_cast<unsigned long long>(named.offset));
    return named.function + offset;
  }

 private:
  struct Named {
    bool found = false;
    std::string function;
    uint64_t offset = 0;
  };
  // One symbolizer question per distinct address: frames repeat across events.
  const Named& lookup(const Frame& frame) {
    auto [it, inserted] = cache_.try_emplace(frame.address);
    if (inserted) {
      symbolizer::CodeLocation where = symbols_.name_code(frame.address);
      it->second = Named{where.found, std::move(where.function), where.offset};
    }
    return it->second;
  }

  symbolizer::Symbolizer& symbols_;
  std::vector<AddressRange> lock_text_;
  std::unordered_map<uint64_t, Named> cache_;
};

}  // namespace lockscope::contention
