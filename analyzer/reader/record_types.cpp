#include "record_types.hpp"

#include <linux/perf_event.h>
#include <array>
#include <string>
#include <vector>

#include "lockscope/perf_data.hpp"

namespace lockscope::perf {
namespace {

struct RecordTypeName {
  uint32_t type;
  std::string_view name;
};
constexpr std::array kRecordTypeNames = {
    RecordTypeName{PERF_RECORD_MMAP, "MMAP"},
    RecordTypeName{PERF_RECORD_LOST, "LOST"},
    RecordTypeName{PERF_RECORD_COMM, "COMM"},
    RecordTypeName{PERF_RECORD_EXIT, "EXIT"},
    RecordTypeName{PERF_RECORD_THROTTLE, "THROTTLE"},
    RecordTypeName{PERF_RECORD_UNTHROTTLE, "UNTHROTTLE"},
    RecordTypeName{PERF_RECORD_FORK, "FORK"},
    RecordTypeName{PERF_RECORD_READ, "READ"},
    RecordTypeName{PERF_RECORD_SAMPLE, "SAMPLE"},
    RecordTypeName{PERF_RECORD_MMAP2, "MMAP2"},
    RecordTypeName{PERF_RECORD_AUX, "AUX"},
    RecordTypeName{PERF_RECORD_ITRACE_START, "ITRACE_START"},
    RecordTypeName{PERF_RECORD_LOST_SAMPLES, "LOST_SAMPLES"},
    RecordTypeName{PERF_RECORD_SWITCH, "SWITCH"},
    RecordTypeName{PERF_RECORD_SWITCH_CPU_WIDE, "SWITCH_CPU_WIDE"},
    RecordTypeName{PERF_RECORD_NAMESPACES, "NAMESPACES"},
    RecordTypeName{PERF_RECORD_KSYMBOL, "KSYMBOL"},
    RecordTypeName{PERF_RECORD_BPF_EVENT, "BPF_EVENT"},
    RecordTypeName{PERF_RECORD_CGROUP, "CGROUP"},
    RecordTypeName{PERF_RECORD_TEXT_POKE, "TEXT_POKE"},
    RecordTypeName{21, "AUX_OUTPUT_HW_ID"},
    RecordTypeName{kHeaderAttr, "HEADER_ATTR"},
    RecordTypeName{kHeaderEventType, "HEADER_EVENT_TYPE"},
    RecordTypeName{kHeaderTracingData, "HEADER_TRACING_DATA"},
    RecordTypeName{kHeaderBuildId, "HEADER_BUILD_ID"},
    RecordTypeName{kFinishedRound, "FINISHED_ROUND"},
    RecordTypeName{kIdIndex, "ID_INDEX"},
    RecordTypeName{kAuxtraceInfo, "AUXTRACE_INFO"},
    RecordTypeName{kAuxtrace, "AUXTRACE"},
    RecordTypeName{kAuxtraceError, "AUXTRACE_ERROR"},
    RecordTypeName{kThreadMap, "THREAD_MAP"},
    RecordTypeName{kCpuMap, "CPU_MAP"},
    RecordTypeName{kStatConfig, "STAT_CONFIG"},
    RecordTypeName{kStat, "STAT"},
    RecordTypeName{kStatRound, "STAT_ROUND"},
    RecordTypeName{kEventUpdate, "EVENT_UPDATE"},
    RecordTypeName{kTimeConv, "TIME_CONV"},
    RecordTypeName{kHeaderFeature, "HEADER_FEATURE"},
    RecordTypeName{kCompressed, "COMPRESSED"},
    RecordTypeName{kFinishedInit, "FINISHED_INIT"},
    RecordTypeName{kCompressed2, "COMPRESSED2"},
};

}  // namespace

std::string_view record_context(uint32_t type) {
  static const std::vector<std::string> contexts = [] {
    std::vector<std::string> names(kRecordTypeNames.size() + 1);
    for (size_t i = 0; i < kRecordTypeNames.size(); ++i) {
      names[i] = "PERF_RECORD_" + std::string(kRecordTypeNames[i].name);
    }
    names.back() = "PERF_RECORD_UNKNOWN";
    return names;
  }();
  for (size_t i = 0; i < kRecordTypeNames.size(); ++i) {
    if (kRecordTypeNames[i].type == type) return contexts[i];
  }
  return contexts.back();
}

std::string_view record_type_name(uint32_t type) {
  for (const auto& entry : kRecordTypeNames) {
    if (entry.type == type) return entry.name;
  }
  return "UNKNOWN";
}

}  // namespace lockscope::perf
