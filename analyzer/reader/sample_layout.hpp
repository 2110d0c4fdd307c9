// Where each field of a sample sits, computed once per attr from its sample_type, and the readers
// of a sample body and of the sample_id_all trailer of other kernel records. Internal to
// analyzer/.
#pragma once

#include <linux/perf_event.h>
#include <cstdint>

#include "lockscope/perf_data.hpp"
#include "record_sources.hpp"

namespace lockscope::perf {

// An offset that the sample_type leaves out.
constexpr int kAbsent = -1;

// The fields of a sample body up to CALLCHAIN sit at fixed offsets (from the end of the record
// header); fields after the first variable-length one (READ, CALLCHAIN, RAW, ...) are found by
// walking. Non-sample records end in a sample_id_all trailer of fixed layout.
struct SampleLayout {
  uint64_t sample_type = 0;
  uint64_t read_format = 0;
  uint64_t branch_sample_type = 0;
  uint64_t regs_user_mask = 0;
  uint64_t regs_intr_mask = 0;

  // Offsets in a sample body, kAbsent when the sample_type lacks the field.
  int identifier_offset = kAbsent;
  int ip_offset = kAbsent;
  int tid_offset = kAbsent;  // pid, then tid (u32 each)
  int time_offset = kAbsent;
  int addr_offset = kAbsent;
  int id_offset = kAbsent;
  int stream_id_offset = kAbsent;
  int cpu_offset = kAbsent;  // cpu, then a reserved u32
  int period_offset = kAbsent;
  uint32_t fixed_size = 0;  // bytes of the fixed-offset fields: the variable ones start here
  // Where the ID (or IDENTIFIER) is in a sample body: what matches a sample to its event.
  int event_id_offset = kAbsent;

  // The sample_id_all trailer of non-sample records: its size, and offsets from its start.
  bool sample_id_all = false;
  uint32_t trailer_size = 0;
  int trailer_tid_offset = kAbsent;
  int trailer_time_offset = kAbsent;
  int trailer_id_offset = kAbsent;  // ID, or IDENTIFIER when both are there (they are equal)
  int trailer_cpu_offset = kAbsent;
};

SampleLayout sample_layout_for(const perf_event_attr& attr);

// Two layouts put the event id of samples, and the sample_id_all trailer, in the same places: a
// recording whose events' layouts differ here cannot be read (perf refuses it too).
bool same_event_id_offset(const SampleLayout& a, const SampleLayout& b);
bool same_trailer(const SampleLayout& a, const SampleLayout& b);

// Fills every field of `sample` but event, file_offset and misc from a SAMPLE record. Throws
// Error when a field runs past the record.
void read_sample_body(const RawRecord& record, const SampleLayout& layout, Sample& sample);

// The time of a SAMPLE record, 0 when its sample_type has none or the record is too short (the
// read proper reports that).
inline uint64_t sample_time(const RawRecord& record, const SampleLayout& layout) {
  if (layout.time_offset == kAbsent) return 0;
  uint64_t at = sizeof(perf_event_header) + static_cast<uint64_t>(layout.time_offset);
  if (at + 8 > record.bytes.size()) return 0;
  return load<uint64_t>(record.bytes.data() + at);
}

// Reads the sample_id_all trailer of a non-sample record into `id` (left as it is without one);
// returns the record's body (after its header) without the trailer. Throws Error when the record
// is shorter than its trailer.
Bytes read_sample_id(const RawRecord& record, const SampleLayout& layout, SampleId& id);

// The trailer's time alone, for ordering: the same checks as read_sample_id.
uint64_t sample_id_time(const RawRecord& record, const SampleLayout& layout);

}  // namespace lockscope::perf
