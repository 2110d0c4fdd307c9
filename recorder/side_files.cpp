// FILE.kallsyms and FILE.lockrec.json: the kernel facts the analyzer needs that perf.data lacks.
#include <lockscope/error.hpp>
#include <lockscope/recorder.hpp>

#include <sys/wait.h>

#include <fstream>

#include <nlohmann/json.hpp>

namespace lockscope::recorder {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Bumped whenever a field changes meaning; readers check it.
constexpr int metadata_format_version = 1;

fs::path with_suffix(const fs::path& output, std::string_view suffix) {
  return fs::path(output.string() + std::string(suffix));
}

json probe_json(const probes::ProbeRow& row) {
  return {{"function", row.function},
          {"kind", probes::name_of(row.kind)},
          {"flavour", probes::name_of(row.flavour)},
          {"role", probes::name_of(row.role)}};
}

json command_status_json(int wait_status) {
  if (WIFSIGNALED(wait_status)) return {{"signal", WTERMSIG(wait_status)}};
  return {{"exit_code", WEXITSTATUS(wait_status)}};
}

json modules_json(const KernelView& kernel) {
  json modules = json::array();
  for (const auto& module : kernel.modules())
    modules.push_back({{"name", module.name},
                       {"base_address", module.base_address},
                       {"size", module.size},
                       {"sections", module.sections}});
  return modules;
}

json plan_json(const ProbePlan& plan) {
  json probes = json::array();
  for (const auto& chosen : plan.chosen) {
    json probe = probe_json(*chosen.row);
    probe["event"] = chosen.event;
    probe["definition"] = chosen.definition;
    probes.push_back(std::move(probe));
  }
  json skipped = json::array();
  for (const auto& entry : plan.skipped) {
    json probe = probe_json(*entry.row);
    probe["reason"] = entry.reason;
    skipped.push_back(std::move(probe));
  }
  return {{"probes", probes}, {"skipped", skipped}};
}

void write_file(const fs::path& file, const std::string& content) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) throw Error("cannot write").file(file.string());
}

}  // namespace

fs::path kallsyms_file_for(const fs::path& output) { return with_suffix(output, ".kallsyms"); }
fs::path metadata_file_for(const fs::path& output) { return with_suffix(output, ".lockrec.json"); }

void write_side_files(const KernelView& kernel, const Options& options, const RecordingSummary& summary) {
  fs::path kallsyms_copy = kallsyms_file_for(options.output);
  // Read, not fs::copy_file: /proc files report size 0, so copy_file would copy nothing.
  write_file(kallsyms_copy, kernel.read("/proc/kallsyms"));

  auto build_id = kernel.build_id();
  json metadata = {
      {"format_version", metadata_format_version},
      {"perf_data", options.output.filename().string()},
      {"kallsyms", kallsyms_copy.filename().string()},
      {"mode", name_of(summary.mode)},
      {"kernel",
       {{"release", kernel.release()},
        {"machine", kernel.machine()},
        {"build_id", build_id ? json(*build_id) : json(nullptr)}}},
      {"modules", modules_json(kernel)},
      {"events", summary.events},
      {"perf_record", summary.record_command},
      {"perf_probe", summary.probe_command},
      {"command", options.command},
      {"command_status", command_status_json(summary.command_wait_status)},
  };
  if (summary.plan) metadata.update(plan_json(*summary.plan));
  else metadata.update({{"probes", json::array()}, {"skipped", json::array()}});
  write_file(metadata_file_for(options.output), metadata.dump(2) + "\n");
}

}  // namespace lockscope::recorder
