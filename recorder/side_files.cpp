// FILE.kallsyms and FILE.lockrec.json: the kernel facts the analyzer needs that perf.data lacks.
#include <lockscope/error.hpp>
#include <lockscope/recorder.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

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

json command_status_json(std::optional<int> wait_status) {
  if (!wait_status) return nullptr;  // no COMMAND ran
  if (WIFSIGNALED(*wait_status)) return {{"signal", WTERMSIG(*wait_status)}};
  return {{"exit_code", WEXITSTATUS(*wait_status)}};
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

// Owner-only, like perf's own perf.data: the files hold the kernel's real addresses, which would
// undo KASLR for anyone who can read them.
// Atomic: written under a temporary name, synced, then renamed over FILE. A full disk or a kill
// midway leaves the previous FILE (or none), never a partial one that the analyzer would trust.
void write_file(const fs::path& file, const std::string& content) {
  fs::path temporary = file.string() + ".tmp." + std::to_string(getpid());
  int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  // O_EXCL: a file of the temporary's name is not ours to remove, so not fail().
  if (fd < 0) throw Error(std::string("cannot write: ") + std::strerror(errno)).file(file.string());
  // Closes the temporary if still open and removes it; errno is read first, as both may change it.
  auto fail = [&](const std::string& what) {
    Error error = Error(what + ": " + std::strerror(errno)).file(file.string());
    if (fd >= 0) close(fd);
    unlink(temporary.c_str());
    return error;
  };
  for (size_t written = 0; written < content.size();) {
    ssize_t got = write(fd, content.data() + written, content.size() - written);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) throw fail("cannot write");
    written += static_cast<size_t>(got);
  }
  if (fsync(fd) != 0) throw fail("cannot write (fsync)");
  int closing = std::exchange(fd, -1);
  if (close(closing) != 0) throw fail("cannot write (close)");
  if (rename(temporary.c_str(), file.c_str()) != 0) throw fail("cannot rename " + temporary.string() + " to it");
}

}  // namespace

fs::path kallsyms_file_for(const fs::path& output) { return with_suffix(output, ".kallsyms"); }
fs::path metadata_file_for(const fs::path& output) { return with_suffix(output, ".lockrec.json"); }

void keep_side_files_with_old_recording(const fs::path& output) {
  // The same test as perf's check_backup(): a file (or perf.data directory) of non-zero size.
  struct stat facts;
  if (stat(output.c_str(), &facts) != 0 || facts.st_size == 0) return;
  fs::path old_recording = with_suffix(output, ".old");
  for (const auto& side_file_for : {kallsyms_file_for, metadata_file_for}) {
    fs::path current = side_file_for(output), old = side_file_for(old_recording);
    std::error_code error;
    if (fs::exists(current, error)) {
      fs::rename(current, old, error);
    } else {
      fs::remove(old, error);  // FILE.old's side files would belong to an older recording still
    }
    if (error)
      throw Error("cannot keep the side file with the previous recording: " + error.message())
          .file(current.string())
          .hint("perf moves " + output.string() + " to " + old_recording.string() + "; move or remove them first");
  }
}

void write_side_files(const KernelView& kernel, const Options& options, const RecordingSummary& summary) {
  fs::path kallsyms_copy = kallsyms_file_for(options.output);
  // Read, not fs::copy_file: /proc files report size 0, so copy_file would copy nothing.
  write_file(kallsyms_copy, kernel.read("/proc/kallsyms"));

  auto build_id = kernel.build_id();
  std::error_code size_error;
  uintmax_t recording_size = fs::file_size(options.output, size_error);
  json recording_bytes = size_error ? json(nullptr) : json(recording_size);
  json metadata = {
      {"format_version", metadata_format_version},
      {"perf_data", options.output.filename().string()},
      // perf has finished the file: its size ties these side files to it (a later recording to
      // the same name, or a copy cut short, has another).
      {"perf_data_bytes", recording_bytes},
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
  if (summary.plan)
    metadata.update(plan_json(*summary.plan));
  else
    metadata.update({{"probes", json::array()}, {"skipped", json::array()}});
  write_file(metadata_file_for(options.output), metadata.dump(2) + "\n");
}

}  // namespace lockscope::recorder
