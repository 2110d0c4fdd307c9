// Output formats of the sharing report: a table of writers (text, json, dot). Internal to
// analyzer/. The JSON schema is documented in docs/report-schema.md.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "sharing_report.hpp"

namespace lockscope::report {

constexpr int kReportSchemaVersion = 1;

struct TextOptions {
  size_t top_locks = 20;
  size_t holders_per_lock = 12;
  size_t frames_per_stack = 16;
};

std::vector<std::string> output_formats();
void write_report(const Report& report, std::string_view format, const TextOptions& options, std::ostream& out);

}  // namespace lockscope::report
