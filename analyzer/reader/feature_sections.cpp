#include "feature_sections.hpp"

#include <array>
#include <cstring>
#include <string_view>

#include "lockscope/error.hpp"

namespace lockscope::perf {
namespace {

constexpr uint32_t kAttrSizeVer0 = 64;  // PERF_ATTR_SIZE_VER0: the smallest attr perf ever wrote
constexpr uint16_t kMiscBuildIdSize = 1u << 15;

// What a feature's parser gets: its section, and where its facts go.
struct FeatureInput {
  ByteCursor& cursor;
  Bytes bytes;
  uint64_t offset;
  Metadata& metadata;
  EventTable& events;
};

std::string build_id_hex(Bytes bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    out += kDigits[static_cast<unsigned>(b) >> 4];
    out += kDigits[static_cast<unsigned>(b) & 15];
  }
  return out;
}

void parse_tracing_data(FeatureInput& in) {
  in.metadata.tracing_data.assign(in.bytes.begin(), in.bytes.end());
  in.metadata.tracing_data_offset = in.offset;
}

void parse_build_id_section(FeatureInput& in) { parse_build_ids(in.cursor, in.metadata); }
void parse_hostname(FeatureInput& in) { in.metadata.hostname = in.cursor.perf_string("HOSTNAME"); }
void parse_os_release(FeatureInput& in) { in.metadata.os_release = in.cursor.perf_string("OSRELEASE"); }
void parse_version(FeatureInput& in) { in.metadata.perf_version = in.cursor.perf_string("VERSION"); }
void parse_arch(FeatureInput& in) { in.metadata.arch = in.cursor.perf_string("ARCH"); }

void parse_nr_cpus(FeatureInput& in) {
  in.metadata.nr_cpus_available = in.cursor.u32();
  in.metadata.nr_cpus_online = in.cursor.u32();
}

void parse_cmdline(FeatureInput& in) {
  uint32_t count = in.cursor.u32();
  in.cursor.require_array(count, 4, "CMDLINE strings");
  in.metadata.cmdline.clear();
  for (uint32_t i = 0; i < count; ++i) in.metadata.cmdline.emplace_back(in.cursor.perf_string("CMDLINE"));
}

// The events' names: file mode has them nowhere else.
void parse_event_desc(FeatureInput& in) {
  ByteCursor& cursor = in.cursor;
  uint32_t count = cursor.u32();
  uint32_t attr_size = cursor.u32();
  if (attr_size < kAttrSizeVer0) {
    cursor.fail("EVENT_DESC attr size " + std::to_string(attr_size) + " is below 64");
  }
  cursor.require_array(count, attr_size + 8ull, "EVENT_DESC events");
  for (uint32_t i = 0; i < count; ++i) {
    cursor.skip(attr_size, "EVENT_DESC attr");
    uint32_t nr_ids = cursor.u32();
    std::string name(cursor.perf_string("EVENT_DESC name"));
    cursor.require_array(nr_ids, 8, "EVENT_DESC ids");
    std::vector<uint64_t> ids(nr_ids);
    for (auto& id : ids) id = cursor.u64();
    in.events.name_event(ids, i, name);
  }
}

// One row per feature, in perf's HEADER_* numbering (tools/perf/util/header.h); the row's index is
// its id. A row without a parser is a feature that carries nothing lockscope uses.
struct FeatureSection {
  uint64_t id;
  std::string_view name;
  void (*parse)(FeatureInput&);
};
constexpr std::array kFeatureSections = {
    FeatureSection{0, "RESERVED", nullptr},
    FeatureSection{kFeatureTracingData, "TRACING_DATA", parse_tracing_data},
    FeatureSection{2, "BUILD_ID", parse_build_id_section},
    FeatureSection{3, "HOSTNAME", parse_hostname},
    FeatureSection{4, "OSRELEASE", parse_os_release},
    FeatureSection{5, "VERSION", parse_version},
    FeatureSection{6, "ARCH", parse_arch},
    FeatureSection{7, "NRCPUS", parse_nr_cpus},
    FeatureSection{8, "CPUDESC", nullptr},
    FeatureSection{9, "CPUID", nullptr},
    FeatureSection{10, "TOTAL_MEM", nullptr},
    FeatureSection{11, "CMDLINE", parse_cmdline},
    FeatureSection{12, "EVENT_DESC", parse_event_desc},
    FeatureSection{13, "CPU_TOPOLOGY", nullptr},
    FeatureSection{14, "NUMA_TOPOLOGY", nullptr},
    FeatureSection{15, "BRANCH_STACK", nullptr},
    FeatureSection{16, "PMU_MAPPINGS", nullptr},
    FeatureSection{17, "GROUP_DESC", nullptr},
    FeatureSection{18, "AUXTRACE", nullptr},
    FeatureSection{19, "STAT", nullptr},
    FeatureSection{20, "CACHE", nullptr},
    FeatureSection{21, "SAMPLE_TIME", nullptr},
    FeatureSection{22, "MEM_TOPOLOGY", nullptr},
    FeatureSection{23, "CLOCKID", nullptr},
    FeatureSection{24, "DIR_FORMAT", nullptr},
    FeatureSection{25, "BPF_PROG_INFO", nullptr},
    FeatureSection{26, "BPF_BTF", nullptr},
    FeatureSection{27, "COMPRESSED", nullptr},
    FeatureSection{28, "CPU_PMU_CAPS", nullptr},
    FeatureSection{29, "CLOCK_DATA", nullptr},
    FeatureSection{30, "HYBRID_TOPOLOGY", nullptr},
    FeatureSection{31, "PMU_CAPS", nullptr},
};

constexpr bool rows_are_in_id_order() {
  for (size_t i = 0; i < kFeatureSections.size(); ++i) {
    if (kFeatureSections[i].id != i) return false;
  }
  return true;
}
static_assert(rows_are_in_id_order(), "kFeatureSections is indexed by feature id");

const FeatureSection* feature_section(uint64_t feature) {
  return feature < kFeatureSections.size() ? &kFeatureSections[feature] : nullptr;
}

}  // namespace

std::string feature_name(uint64_t feature) {
  if (const FeatureSection* section = feature_section(feature)) return std::string(section->name);
  return std::to_string(feature);
}

void parse_feature_section(uint64_t feature, Bytes bytes, uint64_t offset, Metadata& metadata, EventTable& events) {
  metadata.features.push_back(feature);
  const FeatureSection* section = feature_section(feature);
  if (section == nullptr || section->parse == nullptr) return;
  std::string context = "feature " + std::to_string(feature);  // outlives the cursor
  ByteCursor cursor(bytes, offset, context);
  FeatureInput input{cursor, bytes, offset, metadata, events};
  section->parse(input);
}

void parse_build_ids(ByteCursor& cursor, Metadata& metadata) {
  while (!cursor.at_end()) {
    uint64_t entry_offset = cursor.file_offset();
    perf_event_header header = cursor.read<perf_event_header>();
    constexpr uint32_t kFixed = 8 + 4 + 24;
    if (header.size < kFixed) {
      throw Error("build-id entry of " + std::to_string(header.size) + " bytes, smaller than " + "its fixed part (36)")
          .at(entry_offset)
          .in("BUILD_ID")
          .hint("the file is corrupt");
    }
    cursor.require(header.size - 8, "a build-id entry");
    BuildIdEntry entry;
    entry.misc = header.misc;
    entry.pid = cursor.read<int32_t>();
    Bytes id = cursor.take(24, "build-id");
    size_t id_size = 20;
    if (header.misc & kMiscBuildIdSize) {
      id_size = std::min<size_t>(static_cast<size_t>(id[20]), 20);
    }
    entry.build_id_hex = build_id_hex(id.first(id_size));
    Bytes name = cursor.take(header.size - kFixed, "build-id filename");
    const char* chars = reinterpret_cast<const char*>(name.data());
    entry.filename.assign(chars, strnlen(chars, name.size()));
    metadata.build_ids.push_back(std::move(entry));
  }
}

}  // namespace lockscope::perf
