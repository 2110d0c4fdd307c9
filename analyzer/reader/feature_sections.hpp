// Feature sections (perf's HEADER_* features: hostname, build-ids, event names, tracing data...),
// as a table of one row per feature, like perf's own feat_ops. The same parsers read file mode's
// sections and pipe mode's HEADER_FEATURE records. Internal to analyzer/.
#pragma once

#include <cstdint>
#include <string>

#include "byte_cursor.hpp"
#include "event_table.hpp"
#include "lockscope/perf_data.hpp"

namespace lockscope::perf {

// Feature ids (tools/perf/util/header.h) that pipe mode announces by a record of its own.
constexpr uint64_t kFeatureTracingData = 1;

// "HOSTNAME", "EVENT_DESC", or the number of a feature this build does not know, for messages.
std::string feature_name(uint64_t feature);

// Parses one feature section (`bytes`, at `offset` in the file) into the metadata; features that
// carry nothing lockscope uses are only listed in Metadata::features. Throws Error when the
// section is malformed.
void parse_feature_section(uint64_t feature, Bytes bytes, uint64_t offset, Metadata& metadata, EventTable& events);

// A sequence of {perf_event_header, pid, build_id[24], filename} entries: the BUILD_ID feature,
// and pipe mode's HEADER_BUILD_ID record.
void parse_build_ids(ByteCursor& cursor, Metadata& metadata);

}  // namespace lockscope::perf
