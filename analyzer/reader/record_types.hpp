// Record types: the numbers perf writes (the kernel's PERF_RECORD_* and perf's own), their names
// as perf prints them, and the error context of each. Internal to analyzer/.
#pragma once

#include <cstdint>
#include <string_view>

namespace lockscope::perf {

// Record types written by perf itself (tools/perf/util/event.h), not by the kernel.
enum UserRecordType : uint32_t {
  kHeaderAttr = 64,
  kHeaderEventType = 65,
  kHeaderTracingData = 66,
  kHeaderBuildId = 67,
  kFinishedRound = 68,
  kIdIndex = 69,
  kAuxtraceInfo = 70,
  kAuxtrace = 71,
  kAuxtraceError = 72,
  kThreadMap = 73,
  kCpuMap = 74,
  kStatConfig = 75,
  kStat = 76,
  kStatRound = 77,
  kEventUpdate = 78,
  kTimeConv = 79,
  kHeaderFeature = 80,
  kCompressed = 81,
  kFinishedInit = 82,
  kCompressed2 = 83,
};

// "PERF_RECORD_<NAME>" for error contexts; lives for the whole program (cursors keep a view).
std::string_view record_context(uint32_t type);

}  // namespace lockscope::perf
