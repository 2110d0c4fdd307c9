#include "lockrec_side_file.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "lockscope/error.hpp"

namespace lockscope::report {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// A real side file is some hundreds of KiB (mostly the loaded modules' sections). The limits keep
// a hostile one from costing memory before any field is looked at: the file's size, the values
// the parser may build (each key, value, object and array counts), and the nesting, where lockrec
// writes three levels (modules[].sections.NAME).
constexpr uintmax_t kMaxFileBytes = 16u << 20;
constexpr size_t kMaxJsonValues = 500000;
constexpr int kMaxDepth = 16;
// lockrec writes one probes[] or skipped[] entry per probe-table row, of which there are fewer
// than a hundred; far more is not lockrec's file.
constexpr size_t kMaxProbeEntries = 1024;
// The longest name the report prints from the file: kernel symbols are shorter (KSYM_NAME_LEN).
constexpr size_t kMaxNameLength = 512;

constexpr std::string_view kMalformedHint =
    "it was written by lockrec next to the recording: remove it or record again";

// What each mode lets the recording see, for the header line. A kprobe recording sees the
// acquisitions through the functions it probed, so its line counts them instead.
struct ModeRow {
  std::string_view name;
  bool lists_probes;
  std::string_view sees;
};
constexpr std::array kModes = {
    ModeRow{"kprobe", true, ""},
    ModeRow{"contention", false, "only contended acquisitions are seen"},
};

const ModeRow* mode_named(std::string_view name) {
  auto row = std::find_if(kModes.begin(), kModes.end(), [&](const ModeRow& m) { return m.name == name; });
  return row == kModes.end() ? nullptr : &*row;
}

// command_status is an object with exactly one of these keys.
constexpr std::array<std::string_view, 2> kStatusKeys = {"exit_code", "signal"};

std::string article(std::string_view type_name) {
  return (std::string_view("aeiou").find(type_name.front()) != std::string_view::npos ? "an " : "a ") +
         std::string(type_name);
}

// A value of the file with where it sits ("probes[3].function"), so every complaint names the
// field. Each accessor checks the type it needs.
class Field {
 public:
  Field(const Json& value, std::string where) : value_(value), where_(std::move(where)) {}

  Field member(std::string_view key) const {
    require(Json::value_t::object, "object");
    std::string where = where_.empty() ? std::string(key) : where_ + "." + std::string(key);
    auto found = value_.find(key);
    if (found == value_.end()) throw Error("missing").in(where).hint(std::string(kMalformedHint));
    return Field(*found, std::move(where));
  }
  // The elements of an array of at most `max` of them.
  std::vector<Field> elements(size_t max) const {
    require(Json::value_t::array, "array");
    if (value_.size() > max) {
      fail(std::to_string(value_.size()) + " entries, more than the " + std::to_string(max) + " lockrec could write");
    }
    std::vector<Field> out;
    for (size_t i = 0; i < value_.size(); ++i) out.emplace_back(value_[i], where_ + "[" + std::to_string(i) + "]");
    return out;
  }
  bool has(std::string_view key) const {
    require(Json::value_t::object, "object");
    return value_.contains(key);
  }
  bool is_null() const { return value_.is_null(); }
  const std::string& text() const {
    require(Json::value_t::string, "string");
    return value_.get_ref<const std::string&>();
  }
  // A string the text report prints: one line, of bounded length.
  const std::string& name() const {
    const std::string& value = text();
    if (value.size() > kMaxNameLength) fail("longer than " + std::to_string(kMaxNameLength) + " bytes");
    bool control = std::any_of(value.begin(), value.end(),
                               [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
    if (control) fail("has control characters");
    return value;
  }
  int64_t integer() const {
    if (!value_.is_number_integer()) fail("expected an integer, found " + describe_value());
    // Unsigned values above int64's range would wrap in get<int64_t>.
    if (value_.is_number_unsigned() &&
        value_.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      fail(std::to_string(value_.get<uint64_t>()) + " is out of range");
    }
    return value_.get<int64_t>();
  }
  size_t object_size() const {
    require(Json::value_t::object, "object");
    return value_.size();
  }
  [[noreturn]] void fail(const std::string& problem) const {
    throw Error(problem).in(where_).hint(std::string(kMalformedHint));
  }

 private:
  void require(Json::value_t type, std::string_view type_name) const {
    if (value_.type() != type) fail("expected " + article(type_name) + ", found " + describe_value());
  }
  std::string describe_value() const {
    if (value_.is_null()) return "null";
    if (value_.is_number()) return value_.is_number_integer() ? "an integer" : "a number";
    return article(value_.type_name());
  }

  const Json& value_;
  std::string where_;
};

Json parse_bounded(std::string_view text) {
  size_t values = 0;
  auto guard = [&values](int depth, Json::parse_event_t event, Json&) {
    if (depth > kMaxDepth) {
      throw Error("nested deeper than " + std::to_string(kMaxDepth) + " levels").hint(std::string(kMalformedHint));
    }
    bool closes = event == Json::parse_event_t::object_end || event == Json::parse_event_t::array_end;
    if (!closes && ++values > kMaxJsonValues) {
      throw Error("more than " + std::to_string(kMaxJsonValues) + " JSON values").hint(std::string(kMalformedHint));
    }
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), guard);
  } catch (const Json::exception& error) {
    // parse_error, or out_of_range for a number too big for its type (found by the fuzzer).
    // nlohmann's message after its "[json.exception.parse_error.101] " tag says where and what.
    std::string_view message = error.what();
    if (auto tag_end = message.find("] "); tag_end != std::string_view::npos) message.remove_prefix(tag_end + 2);
    throw Error("not JSON: " + std::string(message)).hint(std::string(kMalformedHint));
  }
}

std::string checked_build_id(const Field& field) {
  if (field.is_null()) return "";  // lockrec could not read /sys/kernel/notes
  const std::string& hex = field.name();
  // perf's BUILD_ID_SIZE is 20 bytes; lockrec writes lowercase hex, as perf buildid-list does.
  bool valid =
      !hex.empty() && hex.size() <= 40 && hex.size() % 2 == 0 &&
      std::all_of(hex.begin(), hex.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  if (!valid) field.fail("'" + hex + "' is not a build-id (up to 40 lowercase hex digits)");
  return hex;
}

LockrecCommandStatus checked_status(const Field& field) {
  for (std::string_view key : kStatusKeys) {
    if (field.object_size() != 1 || !field.has(key)) continue;
    Field value = field.member(key);
    int64_t number = value.integer();
    if (number < 0 || number > 255) value.fail(std::to_string(number) + " is not an exit code or signal number");
    return {std::string(key), number};
  }
  field.fail("expected one key, exit_code or signal");
}

LockrecSideFile parse_fields(const Json& document, const std::string& path) {
  Field root(document, "");
  LockrecSideFile side;
  side.path = path;

  // The version first: a newer lockrec may have changed what the other fields mean.
  Field version_field = root.member("format_version");
  int64_t version = version_field.integer();
  if (version > kLockrecFormatVersion) {
    throw Error("format_version " + std::to_string(version) + " is newer than this lockanalyze reads (" +
                std::to_string(kLockrecFormatVersion) + ")")
        .hint("it was written by a newer lockrec: update lockscope, or remove the file to report without it");
  }
  if (version < 1) version_field.fail(std::to_string(version) + " is not a version lockrec writes");

  Field mode = root.member("mode");
  side.mode = mode.name();
  if (mode_named(side.mode) == nullptr) {
    std::string known;
    for (const auto& row : kModes) known += (known.empty() ? "" : ", ") + std::string(row.name);
    mode.fail("'" + side.mode + "' is not a mode lockrec records in (" + known + ")");
  }

  // Fields added within a version (and the ones the report does not use, like modules) are left
  // unread, as the report schema allows its own readers.
  Field kernel = root.member("kernel");
  side.kernel_release = kernel.member("release").name();
  side.kernel_build_id = checked_build_id(kernel.member("build_id"));
  for (const Field& probe : root.member("probes").elements(kMaxProbeEntries)) {
    side.probes.push_back(probe.member("event").name());
  }
  for (const Field& probe : root.member("skipped").elements(kMaxProbeEntries)) {
    side.skipped.push_back(
        {probe.member("function").name(), probe.member("role").name(), probe.member("reason").name()});
  }
  // COMMAND's argv goes only into the JSON report (escaped there), so any string will do.
  for (const Field& argument : root.member("command").elements(kMaxJsonValues)) {
    side.command.push_back(argument.text());
  }
  if (Field status = root.member("command_status"); !status.is_null()) side.command_status = checked_status(status);
  if (root.has("perf_data_bytes")) {
    Field bytes = root.member("perf_data_bytes");
    if (!bytes.is_null()) {
      int64_t value = bytes.integer();
      if (value < 0) bytes.fail(std::to_string(value) + " is not a file size");
      side.perf_data_bytes = static_cast<uint64_t>(value);
    }
  }
  return side;
}

}  // namespace

std::string lockrec_side_file_for(const std::string& recording) { return recording + ".lockrec.json"; }

std::optional<LockrecSideFile> read_lockrec_side_file(const std::string& recording) {
  std::string path = lockrec_side_file_for(recording);
  std::error_code error;
  fs::file_status status = fs::status(path, error);
  if (status.type() == fs::file_type::not_found) return std::nullopt;
  if (error) {
    throw Error("cannot read: " + error.message()).file(path).hint("make it readable like the recording, or remove it");
  }
  // A fifo or a device would block the read or never end.
  if (status.type() != fs::file_type::regular) {
    throw Error("not a regular file").file(path).hint(std::string(kMalformedHint));
  }
  uintmax_t size = fs::file_size(path, error);
  if (!error && size > kMaxFileBytes) {
    throw Error(std::to_string(size) + " bytes, more than the " + std::to_string(kMaxFileBytes) +
                " lockrec could write")
        .file(path)
        .hint(std::string(kMalformedHint));
  }
  std::ifstream in(path, std::ios::binary);
  std::string text(error ? 0 : size, '\0');
  if (in) in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (!in || error) {
    throw Error(std::string("cannot read: ") + std::strerror(errno))
        .file(path)
        .hint("make it readable like the recording, or remove it");
  }
  return parse_lockrec_side_file(text, path);
}

LockrecSideFile parse_lockrec_side_file(std::string_view text, const std::string& path) {
  try {
    return parse_fields(parse_bounded(text), path);
  } catch (Error& error) {
    error.file(path);
    throw;
  }
}

void check_same_kernel(const LockrecSideFile& side, std::string_view os_release, std::string_view build_id_hex) {
  struct Fact {
    std::string_view what;
    std::string_view side, recording;
  };
  const std::array facts = {Fact{"kernel release", side.kernel_release, os_release},
                            Fact{"kernel build-id", side.kernel_build_id, build_id_hex}};
  for (const Fact& fact : facts) {
    if (fact.side.empty() || fact.recording.empty() || fact.side == fact.recording) continue;
    throw Error("its " + std::string(fact.what) + " " + std::string(fact.side) + " is not the recording's (" +
                std::string(fact.recording) + ")")
        .file(side.path)
        .hint("it belongs to another recording: remove it, or put that recording's own side files beside it");
  }
}

void check_same_recording(const LockrecSideFile& side, uint64_t recording_bytes) {
  if (!side.perf_data_bytes || *side.perf_data_bytes == recording_bytes) return;
  throw Error("it was written for a recording of " + std::to_string(*side.perf_data_bytes) +
              " bytes, and the recording has " + std::to_string(recording_bytes))
      .file(side.path)
      .hint(
          "it belongs to another recording: remove it and its .kallsyms, or put that recording's own side files beside "
          "it");
}

std::string describe(const LockrecSideFile& side) {
  std::string line = "recorded by lockrec in " + side.mode + " mode: ";
  const ModeRow* mode = mode_named(side.mode);
  if (mode != nullptr && !mode->lists_probes) return line + std::string(mode->sees);

  line += std::to_string(side.probes.size()) + (side.probes.size() == 1 ? " probe" : " probes");
  // The skipped functions by reason, in lockrec's order. A trylock's entry and return rows share a
  // function, so a name is listed once per reason.
  std::vector<std::pair<std::string, std::vector<std::string>>> by_reason;
  for (const auto& probe : side.skipped) {
    auto group = std::find_if(by_reason.begin(), by_reason.end(),
                              [&](const auto& entry) { return entry.first == probe.reason; });
    if (group == by_reason.end()) group = by_reason.insert(by_reason.end(), {probe.reason, {}});
    if (std::find(group->second.begin(), group->second.end(), probe.function) == group->second.end()) {
      group->second.push_back(probe.function);
    }
  }
  // A few names each; the JSON report lists them all.
  constexpr size_t kNamesShown = 3;
  std::string groups;
  for (const auto& [reason, functions] : by_reason) {
    std::string names;
    for (size_t i = 0; i < functions.size() && i < kNamesShown; ++i) names += (i ? ", " : "") + functions[i];
    if (functions.size() > kNamesShown) names += " and " + std::to_string(functions.size() - kNamesShown) + " more";
    groups += (groups.empty() ? "" : "; ") + reason + ": " + names;
  }
  if (!groups.empty()) line += " (" + groups + ")";
  return line;
}

}  // namespace lockscope::report
