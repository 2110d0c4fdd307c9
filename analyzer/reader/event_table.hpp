// The recording's events (attrs and their ids) and how a record finds its event and its sample
// layout. Internal to analyzer/.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lockscope/perf_data.hpp"
#include "record_sources.hpp"
#include "sample_layout.hpp"

namespace lockscope::perf {

// perf_event_attr as this build knows it, filled from however many bytes the file has (at least
// PERF_ATTR_SIZE_VER0, checked by the caller).
perf_event_attr attr_from_bytes(Bytes bytes);

class EventTable {
 public:
  // The events live in the metadata (its public face); the table indexes them.
  explicit EventTable(std::vector<EventDesc>& events) : events_(events) {}
  EventTable(const EventTable&) = delete;
  EventTable& operator=(const EventTable&) = delete;

  // Adds an event and computes its sample layout. Checked one event at a time, so that an error
  // points at the attr that broke the rule (`attr_offset`: where it was read), and so that a
  // stream of many HEADER_ATTR records costs linear time (rebuilding everything per attr was
  // quadratic: 32,000 attrs took 11 s).
  void add(EventDesc event, uint64_t attr_offset);

  // The event of a SAMPLE record, nullptr when its id matches none. Throws Error when the sample
  // is too short to hold its id.
  const EventDesc* event_of_sample(const RawRecord& record) {
    if (events_.size() == 1) return &events_.front();
    if (sample_id_at_ < 0) return nullptr;
    uint64_t offset = sizeof(perf_event_header) + static_cast<uint64_t>(sample_id_at_);
    if (offset + 8 > record.bytes.size()) [[unlikely]] {
      throw_sample_too_short(record);
    }
    return event_for_id(load<uint64_t>(record.bytes.data() + offset));
  }

  const EventDesc* event_for_id(uint64_t id) {
    if (id_table_stale_) build_id_table();
    if (!events_by_dense_id_.empty()) {
      if (id < dense_first_id_ || id - dense_first_id_ >= events_by_dense_id_.size()) return nullptr;
      uint32_t event = events_by_dense_id_[id - dense_first_id_];
      return event == kNoEvent ? nullptr : &events_[event];
    }
    return event_for_id_by_search(id);
  }

  const SampleLayout& layout_of(const EventDesc& event) const { return layouts_[event.index]; }
  // The layout of the sample_id_all trailer of non-sample records (one for all events), nullptr
  // before the first event.
  const SampleLayout* trailer_layout() const { return layouts_.empty() ? nullptr : &layouts_.front(); }

  // Gives a name to the event that owns these ids (or, without ids, the index-th event).
  void name_event(const std::vector<uint64_t>& ids, size_t index, const std::string& name);

 private:
  [[noreturn, gnu::cold]] static void throw_sample_too_short(const RawRecord& record);
  const EventDesc* event_for_id_by_search(uint64_t id) const;
  void build_id_table();

  std::vector<EventDesc>& events_;
  std::vector<SampleLayout> layouts_;  // by event index
  // Where a sample's event id is (from the end of its header), -1 with one event: every sample is
  // its.
  int sample_id_at_ = -1;
  // Which event a sample id belongs to, sorted by id: a binary search over a few dozen ids beats
  // hashing (with its division) twice per sample; a table beats both.
  struct IdEvent {
    uint64_t id;
    size_t event;
  };
  std::vector<IdEvent> id_to_event_;
  bool id_table_stale_ = false;  // events were added since id_to_event_ was built
  // The same, as a table indexed by id - dense_first_id_, when the ids span less than this.
  static constexpr uint64_t kMaxDenseIdSpan = 1u << 16;
  static constexpr uint32_t kNoEvent = UINT32_MAX;
  uint64_t dense_first_id_ = 0;
  std::vector<uint32_t> events_by_dense_id_;
};

}  // namespace lockscope::perf
