#include "contention_naming.hpp"

namespace lockscope::contention {

std::vector<AddressRange> lock_function_ranges(symbolizer::Symbolizer& symbols) {
  std::vector<AddressRange> ranges;
  for (auto [start, end] :
       {std::pair{"__sched_text_start", "__sched_text_end"}, std::pair{"__lock_text_start", "__lock_text_end"}}) {
    auto first = symbols.address_of(start), last = symbols.address_of(end);
    if (first && last && *last > *first) ranges.push_back(AddressRange{*first, *last});
  }
  return ranges;
}

}  // namespace lockscope::contention
