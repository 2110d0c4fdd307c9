// Reads the running kernel's state from /proc, /sys and tracefs, all under a root directory so the
// unit tests can hand it a fake tree.
#include <lockscope/error.hpp>
#include <lockscope/recorder.hpp>

#include <array>
#include <cstring>
#include <fstream>
#include <sstream>

namespace lockscope::recorder {

namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("cannot read").file(file.string());
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

std::string first_line(const fs::path& file) {
  std::string text = read_text(file);
  return text.substr(0, text.find('\n'));
}

// Where tracefs may be mounted, preferred first: the modern mount point, then the debugfs one.
constexpr std::array<std::string_view, 2> tracefs_mount_points = {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"};

}  // namespace

KernelView::KernelView(fs::path root) : root_(std::move(root)) {}

fs::path KernelView::path(std::string_view absolute) const { return root_ / fs::path(absolute).relative_path(); }

std::string KernelView::read(std::string_view absolute) const { return read_text(path(absolute)); }

std::optional<fs::path> KernelView::tracefs() const {
  for (std::string_view mount_point : tracefs_mount_points) {
    // The mount point directory exists even when nothing is mounted on it; events/ only when mounted.
    fs::path candidate = path(mount_point);
    std::error_code error;
    if (fs::is_directory(candidate / "events", error)) return candidate;
    // Mounted but root-only: tracefs is there, the caller says it cannot read it.
    if (error == std::errc::permission_denied) return candidate;
  }
  return std::nullopt;
}

bool KernelView::has_kprobe_events() const {
  auto tracing = tracefs();
  std::error_code unreadable;  // counts as absent; kernel_problems says tracefs cannot be read
  return tracing && fs::exists(*tracing / "kprobe_events", unreadable);
}

bool KernelView::has_contention_tracepoints() const {
  auto tracing = tracefs();
  std::error_code unreadable;
  return tracing && fs::is_directory(*tracing / "events/lock/contention_begin", unreadable) &&
         fs::is_directory(*tracing / "events/lock/contention_end", unreadable);
}

std::string KernelView::machine() const { return first_line(path("/proc/sys/kernel/arch")); }

std::string KernelView::release() const { return first_line(path("/proc/sys/kernel/osrelease")); }

std::set<std::string, std::less<>> KernelView::kernel_functions() const {
  fs::path kallsyms = path("/proc/kallsyms");
  std::ifstream in(kallsyms);
  if (!in) throw Error("cannot read").file(kallsyms.string()).hint("lockrec needs /proc/kallsyms");
  std::set<std::string, std::less<>> functions;
  std::string line;
  while (std::getline(in, line)) {
    // "ffffffff8226ec50 T _raw_spin_lock", and module symbols end with "\t[module]".
    std::istringstream fields(line);
    std::string address, type, name, module;
    if (!(fields >> address >> type >> name)) continue;
    if (fields >> module) continue;
    if (type == "T" || type == "t") functions.insert(std::move(name));
  }
  return functions;
}

std::set<std::string, std::less<>> KernelView::kprobe_blacklist() const {
  // Lines are "0xffffffff81000000-0xffffffff81000010\tfunction_name"; the file is root-only.
  std::set<std::string, std::less<>> refused;
  std::ifstream in(path("/sys/kernel/debug/kprobes/blacklist"));
  std::string range, name;
  while (in >> range >> name) refused.insert(name);
  return refused;
}

std::vector<std::string> KernelView::probe_events_in_group(std::string_view group) const {
  std::vector<std::string> events;
  auto tracing = tracefs();
  if (!tracing || !fs::exists(*tracing / "kprobe_events")) return events;
  std::istringstream lines(read_text(*tracing / "kprobe_events"));
  std::string line;
  while (std::getline(lines, line)) {
    // "p:lockrec/_raw_spin_lock _raw_spin_lock lock=%di:x64", "r16:lockrec/x__return x ret=$retval"
    std::string head = line.substr(0, line.find(' '));
    auto colon = head.find(':');
    auto slash = head.find('/');
    if (colon == std::string::npos || slash == std::string::npos || slash < colon) continue;
    if (head.substr(colon + 1, slash - colon - 1) != group) continue;
    events.push_back(std::string(group) + ":" + head.substr(slash + 1));
  }
  return events;
}

std::optional<std::string> build_id_from_notes(std::string_view notes) {
  // ELF notes: 4-byte namesz, descsz, type, then name and desc each padded to 4 bytes.
  constexpr uint32_t gnu_build_id_type = 3;  // NT_GNU_BUILD_ID
  auto padded = [](uint32_t size) { return (size + 3u) & ~3u; };
  size_t offset = 0;
  while (offset + 12 <= notes.size()) {
    uint32_t header[3];
    std::memcpy(header, notes.data() + offset, sizeof header);
    auto [name_size, desc_size, type] = header;
    size_t name_at = offset + 12;
    size_t desc_at = name_at + padded(name_size);
    if (desc_at + desc_size > notes.size()) break;
    if (type == gnu_build_id_type && notes.substr(name_at, name_size) == std::string_view("GNU\0", 4)) {
      std::string hex;
      for (unsigned char byte : notes.substr(desc_at, desc_size)) {
        constexpr char digits[] = "0123456789abcdef";
        hex += digits[byte >> 4];
        hex += digits[byte & 15];
      }
      return hex;
    }
    offset = desc_at + padded(desc_size);
  }
  return std::nullopt;
}

std::optional<std::string> KernelView::build_id() const {
  fs::path notes = path("/sys/kernel/notes");
  if (!fs::exists(notes)) return std::nullopt;
  return build_id_from_notes(read_text(notes));
}

std::vector<LoadedModule> KernelView::modules() const {
  std::vector<LoadedModule> modules;
  std::ifstream in(path("/proc/modules"));
  std::string line;
  while (std::getline(in, line)) {
    // "ext4 1003520 1 - Live 0xffffffffc0a1b000"
    std::istringstream fields(line);
    LoadedModule module;
    std::string refcount, dependents, state;
    if (!(fields >> module.name >> module.size >> refcount >> dependents >> state >> module.base_address)) continue;
    std::error_code no_sections;
    for (const auto& section : fs::directory_iterator(path("/sys/module") / module.name / "sections", no_sections))
      module.sections[section.path().filename().string()] = first_line(section.path());
    modules.push_back(std::move(module));
  }
  return modules;
}

std::optional<int> KernelView::perf_event_paranoid() const {
  fs::path file = path("/proc/sys/kernel/perf_event_paranoid");
  if (!fs::exists(file)) return std::nullopt;
  return std::stoi(first_line(file));
}

}  // namespace lockscope::recorder
