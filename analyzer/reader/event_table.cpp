#include "event_table.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "lockscope/error.hpp"

namespace lockscope::perf {

perf_event_attr attr_from_bytes(Bytes bytes) {
  perf_event_attr attr{};
  std::memcpy(&attr, bytes.data(), std::min(bytes.size(), sizeof attr));
  attr.size = static_cast<uint32_t>(sizeof attr);
  return attr;
}

void EventTable::add(EventDesc event, uint64_t attr_offset) {
  event.index = events_.size();
  SampleLayout layout = sample_layout_for(event.attr);
  if (!layouts_.empty()) {
    const SampleLayout& first = layouts_.front();
    if (!same_event_id_offset(first, layout)) {
      throw Error("the events' sample_type values do not let a sample be matched to its event " +
                  std::string("(expected ID or IDENTIFIER at one position in every event's samples)"))
          .at(attr_offset)
          .in("attrs")
          .hint("record with `perf record` (it adds PERF_SAMPLE_IDENTIFIER)");
    }
    // perf itself refuses recordings whose events disagree on the sample_id_all trailer.
    if (!same_trailer(first, layout)) {
      throw Error("the events disagree on the sample_id_all trailer layout (expected one layout for all)")
          .at(attr_offset)
          .in("attrs")
          .hint("the recording mixes incompatible events");
    }
    sample_id_at_ = first.event_id_offset;
  }
  events_.push_back(std::move(event));
  layouts_.push_back(layout);
  id_table_stale_ = true;
}

void EventTable::throw_sample_too_short(const RawRecord& record) {
  throw Error("the sample is too short (" + std::to_string(record.bytes.size()) + " bytes) to hold its event id")
      .at(record.file_offset)
      .in("PERF_RECORD_SAMPLE")
      .hint("the file is corrupt");
}

const EventDesc* EventTable::event_for_id_by_search(uint64_t id) const {
  auto found = std::lower_bound(id_to_event_.begin(), id_to_event_.end(), id,
                                [](const IdEvent& entry, uint64_t key) { return entry.id < key; });
  return found == id_to_event_.end() || found->id != id ? nullptr : &events_[found->event];
}

void EventTable::name_event(const std::vector<uint64_t>& ids, size_t index, const std::string& name) {
  for (uint64_t id : ids) {
    if (const EventDesc* event = event_for_id(id)) {
      events_[event->index].name = name;
      return;
    }
  }
  if (ids.empty() && index < events_.size()) events_[index].name = name;
}

// The id -> event map, built when an id is first looked up after events were added.
void EventTable::build_id_table() {
  id_table_stale_ = false;
  id_to_event_.clear();
  for (const EventDesc& event : events_) {
    for (uint64_t id : event.ids) id_to_event_.push_back({id, event.index});
  }
  // Sorted by id; an id listed twice belongs to the later event.
  std::stable_sort(id_to_event_.begin(), id_to_event_.end(),
                   [](const IdEvent& a, const IdEvent& b) { return a.id < b.id; });
  auto last_of_each = std::unique(id_to_event_.rbegin(), id_to_event_.rend(),
                                  [](const IdEvent& a, const IdEvent& b) { return a.id == b.id; });
  id_to_event_.erase(id_to_event_.begin(), last_of_each.base());
  // perf numbers ids from a small counter: when they span less than kMaxDenseIdSpan, index a
  // table by id.
  events_by_dense_id_.clear();
  if (!id_to_event_.empty() && id_to_event_.back().id - id_to_event_.front().id < kMaxDenseIdSpan) {
    dense_first_id_ = id_to_event_.front().id;
    events_by_dense_id_.assign(id_to_event_.back().id - dense_first_id_ + 1, kNoEvent);
    for (const IdEvent& entry : id_to_event_) {
      events_by_dense_id_[entry.id - dense_first_id_] = static_cast<uint32_t>(entry.event);
    }
  }
}

}  // namespace lockscope::perf
