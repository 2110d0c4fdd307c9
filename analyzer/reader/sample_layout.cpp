#include "sample_layout.hpp"

#include <array>
#include <bit>
#include <string>

#include "byte_cursor.hpp"
#include "lockscope/error.hpp"
#include "record_types.hpp"

namespace lockscope::perf {
namespace {

// The fields before the first variable-length one, in the order the kernel writes them
// (perf_output_sample), with the member of SampleLayout that holds each one's offset.
struct FixedField {
  uint64_t bit;
  int SampleLayout::*offset;
};
constexpr std::array kFixedSampleFields = {
    FixedField{PERF_SAMPLE_IDENTIFIER, &SampleLayout::identifier_offset},
    FixedField{PERF_SAMPLE_IP, &SampleLayout::ip_offset},
    FixedField{PERF_SAMPLE_TID, &SampleLayout::tid_offset},
    FixedField{PERF_SAMPLE_TIME, &SampleLayout::time_offset},
    FixedField{PERF_SAMPLE_ADDR, &SampleLayout::addr_offset},
    FixedField{PERF_SAMPLE_ID, &SampleLayout::id_offset},
    FixedField{PERF_SAMPLE_STREAM_ID, &SampleLayout::stream_id_offset},
    FixedField{PERF_SAMPLE_CPU, &SampleLayout::cpu_offset},
    FixedField{PERF_SAMPLE_PERIOD, &SampleLayout::period_offset},
};

// The sample_id_all trailer (perf_event__output_id_sample), in order. STREAM_ID takes room but
// is not read; IDENTIFIER comes last and, when present, is what the id offset names.
struct TrailerField {
  uint64_t bit;
  int SampleLayout::*offset;  // nullptr: skipped
};
constexpr std::array kTrailerFields = {
    TrailerField{PERF_SAMPLE_TID, &SampleLayout::trailer_tid_offset},
    TrailerField{PERF_SAMPLE_TIME, &SampleLayout::trailer_time_offset},
    TrailerField{PERF_SAMPLE_ID, &SampleLayout::trailer_id_offset},
    TrailerField{PERF_SAMPLE_STREAM_ID, nullptr},
    TrailerField{PERF_SAMPLE_CPU, &SampleLayout::trailer_cpu_offset},
    TrailerField{PERF_SAMPLE_IDENTIFIER, &SampleLayout::trailer_id_offset},
};

uint64_t u64_at(const std::byte* base, int offset) { return load<uint64_t>(base + offset); }
uint32_t u32_at(const std::byte* base, int offset) { return load<uint32_t>(base + offset); }

void skip_read_values(ByteCursor& cursor, uint64_t read_format) {
  uint64_t per_value = 8;
  if (read_format & PERF_FORMAT_ID) per_value += 8;
  if (read_format & PERF_FORMAT_LOST) per_value += 8;
  if (read_format & PERF_FORMAT_GROUP) {
    uint64_t count = cursor.u64();
    if (read_format & PERF_FORMAT_TOTAL_TIME_ENABLED) cursor.u64();
    if (read_format & PERF_FORMAT_TOTAL_TIME_RUNNING) cursor.u64();
    cursor.require_array(count, per_value, "group read values");
    cursor.skip(count * per_value, "group read values");
  } else {
    uint64_t size = per_value;
    if (read_format & PERF_FORMAT_TOTAL_TIME_ENABLED) size += 8;
    if (read_format & PERF_FORMAT_TOTAL_TIME_RUNNING) size += 8;
    cursor.skip(size, "read values");
  }
}

// The fields after RAW that skip_trailing_sample_fields walks. Lock recordings have none of them:
// testing this mask once spares each sample a dozen tests.
constexpr uint64_t kTrailingSampleFields = PERF_SAMPLE_BRANCH_STACK | PERF_SAMPLE_REGS_USER | PERF_SAMPLE_STACK_USER |
                                           PERF_SAMPLE_WEIGHT | PERF_SAMPLE_WEIGHT_STRUCT | PERF_SAMPLE_DATA_SRC |
                                           PERF_SAMPLE_TRANSACTION | PERF_SAMPLE_REGS_INTR | PERF_SAMPLE_PHYS_ADDR |
                                           PERF_SAMPLE_CGROUP | PERF_SAMPLE_DATA_PAGE_SIZE |
                                           PERF_SAMPLE_CODE_PAGE_SIZE | PERF_SAMPLE_AUX;

// Fields after RAW are not used, but walking them checks the sample's size is consistent. A field
// tested here belongs in kTrailingSampleFields.
void skip_trailing_sample_fields(ByteCursor& cursor, const SampleLayout& layout) {
  uint64_t type = layout.sample_type;
  if (type & PERF_SAMPLE_BRANCH_STACK) {
    uint64_t count = cursor.u64();
    if (layout.branch_sample_type & PERF_SAMPLE_BRANCH_HW_INDEX) cursor.u64();
    cursor.require_array(count, 24, "branch stack entries");
    cursor.skip(count * 24, "branch stack");
  }
  if (type & PERF_SAMPLE_REGS_USER) {
    if (cursor.u64() != 0) {
      cursor.skip(8ull * static_cast<uint64_t>(std::popcount(layout.regs_user_mask)), "user regs");
    }
  }
  if (type & PERF_SAMPLE_STACK_USER) {
    uint64_t size = cursor.u64();
    cursor.skip(size, "user stack");
    if (size != 0) cursor.u64();  // dyn_size
  }
  for (uint64_t bit : {static_cast<uint64_t>(PERF_SAMPLE_WEIGHT) | PERF_SAMPLE_WEIGHT_STRUCT,
                       static_cast<uint64_t>(PERF_SAMPLE_DATA_SRC), static_cast<uint64_t>(PERF_SAMPLE_TRANSACTION)}) {
    if (type & bit) cursor.u64();
  }
  if (type & PERF_SAMPLE_REGS_INTR) {
    if (cursor.u64() != 0) {
      cursor.skip(8ull * static_cast<uint64_t>(std::popcount(layout.regs_intr_mask)), "intr regs");
    }
  }
  for (uint64_t bit :
       {PERF_SAMPLE_PHYS_ADDR, PERF_SAMPLE_CGROUP, PERF_SAMPLE_DATA_PAGE_SIZE, PERF_SAMPLE_CODE_PAGE_SIZE}) {
    if (type & bit) cursor.u64();
  }
  if (type & PERF_SAMPLE_AUX) {
    uint64_t size = cursor.u64();
    cursor.skip(size, "aux sample data");
  }
}

// The body of a non-sample record, after its header and before its trailer; throws when the
// record is too short for the trailer.
Bytes trailer_of(const RawRecord& record, const SampleLayout& layout) {
  Bytes body = record.bytes.subspan(sizeof(perf_event_header));
  if (layout.trailer_size > body.size()) [[unlikely]] {
    throw Error("the record (" + std::to_string(record.header.size) + " bytes) is too short " +
                "for its sample_id_all trailer of " + std::to_string(layout.trailer_size) + " bytes")
        .at(record.file_offset)
        .in(std::string(record_context(record.header.type)))
        .hint("the file is corrupt");
  }
  return body.last(layout.trailer_size);
}

}  // namespace

SampleLayout sample_layout_for(const perf_event_attr& attr) {
  SampleLayout layout;
  uint64_t type = attr.sample_type;
  layout.sample_type = type;
  layout.read_format = attr.read_format;
  layout.branch_sample_type = attr.branch_sample_type;
  layout.regs_user_mask = attr.sample_regs_user;
  layout.regs_intr_mask = attr.sample_regs_intr;
  layout.sample_id_all = attr.sample_id_all != 0;

  int offset = 0;
  for (const FixedField& field : kFixedSampleFields) {
    if (!(type & field.bit)) continue;
    layout.*field.offset = offset;
    offset += 8;
  }
  layout.fixed_size = static_cast<uint32_t>(offset);
  layout.event_id_offset = type & PERF_SAMPLE_IDENTIFIER ? layout.identifier_offset : layout.id_offset;

  if (layout.sample_id_all) {
    int trailer_offset = 0;
    for (const TrailerField& field : kTrailerFields) {
      if (!(type & field.bit)) continue;
      if (field.offset != nullptr) layout.*field.offset = trailer_offset;
      trailer_offset += 8;
    }
    layout.trailer_size = static_cast<uint32_t>(trailer_offset);
  }
  return layout;
}

bool same_event_id_offset(const SampleLayout& a, const SampleLayout& b) {
  return a.event_id_offset != kAbsent && a.event_id_offset == b.event_id_offset;
}

bool same_trailer(const SampleLayout& a, const SampleLayout& b) {
  return a.sample_id_all == b.sample_id_all && a.trailer_size == b.trailer_size &&
         a.trailer_id_offset == b.trailer_id_offset;
}

void read_sample_body(const RawRecord& record, const SampleLayout& layout, Sample& sample) {
  ByteCursor cursor(record.bytes.subspan(sizeof(perf_event_header)), record.file_offset + sizeof(perf_event_header),
                    "PERF_RECORD_SAMPLE");
  // One check for all the fixed-offset fields, then plain loads: a bounds check per field (and a
  // call for each) was a sixth of the read.
  const std::byte* fixed = cursor.take(layout.fixed_size, "the sample's fixed-size fields").data();
  // Every field is assigned once (the Sample is reused): clearing it first with `sample = Sample{}`
  // compiled to a `rep stos` that cost a fifth of the sample's time.
  sample.ip = layout.ip_offset != kAbsent ? u64_at(fixed, layout.ip_offset) : 0;
  sample.pid = layout.tid_offset != kAbsent ? u32_at(fixed, layout.tid_offset) : 0;
  sample.tid = layout.tid_offset != kAbsent ? u32_at(fixed, layout.tid_offset + 4) : 0;
  sample.time = layout.time_offset != kAbsent ? u64_at(fixed, layout.time_offset) : 0;
  sample.addr = layout.addr_offset != kAbsent ? u64_at(fixed, layout.addr_offset) : 0;
  sample.id = layout.id_offset != kAbsent           ? u64_at(fixed, layout.id_offset)
              : layout.identifier_offset != kAbsent ? u64_at(fixed, layout.identifier_offset)
                                                    : 0;
  sample.stream_id = layout.stream_id_offset != kAbsent ? u64_at(fixed, layout.stream_id_offset) : 0;
  sample.cpu = layout.cpu_offset != kAbsent ? u32_at(fixed, layout.cpu_offset) : 0;
  sample.period = layout.period_offset != kAbsent ? u64_at(fixed, layout.period_offset) : 0;

  uint64_t type = layout.sample_type;
  if (type & PERF_SAMPLE_READ) skip_read_values(cursor, layout.read_format);
  sample.callchain = Callchain();
  if (type & PERF_SAMPLE_CALLCHAIN) {
    uint64_t count = cursor.u64();
    cursor.require_array(count, 8, "callchain entries");
    Bytes ips = cursor.take(count * 8, "callchain");
    sample.callchain = Callchain(ips.data(), count);
  }
  sample.raw = Bytes();
  if (type & PERF_SAMPLE_RAW) {
    uint32_t size = cursor.u32();
    sample.raw = cursor.take(size, "raw tracepoint data");
  }
  if (type & kTrailingSampleFields) skip_trailing_sample_fields(cursor, layout);
}

Bytes read_sample_id(const RawRecord& record, const SampleLayout& layout, SampleId& id) {
  Bytes body = record.bytes.subspan(sizeof(perf_event_header));
  if (!layout.sample_id_all) return body;
  const std::byte* trailer = trailer_of(record, layout).data();
  if (layout.trailer_tid_offset != kAbsent) {
    id.pid = u32_at(trailer, layout.trailer_tid_offset);
    id.tid = u32_at(trailer, layout.trailer_tid_offset + 4);
  }
  if (layout.trailer_time_offset != kAbsent) id.time = u64_at(trailer, layout.trailer_time_offset);
  if (layout.trailer_id_offset != kAbsent) id.id = u64_at(trailer, layout.trailer_id_offset);
  if (layout.trailer_cpu_offset != kAbsent) id.cpu = u32_at(trailer, layout.trailer_cpu_offset);
  id.present = true;
  return body.first(body.size() - layout.trailer_size);
}

uint64_t sample_id_time(const RawRecord& record, const SampleLayout& layout) {
  if (!layout.sample_id_all) return 0;
  Bytes trailer = trailer_of(record, layout);
  return layout.trailer_time_offset != kAbsent ? u64_at(trailer.data(), layout.trailer_time_offset) : 0;
}

}  // namespace lockscope::perf
