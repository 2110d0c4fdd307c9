// lockrec's FILE.lockrec.json as the report reads it: a file lockrec writes gives the mode, probes
// and kernel facts; anything else is one Error that names the file, the field and what to do.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "lockrec_side_file.hpp"
#include "lockscope/error.hpp"

using namespace lockscope;
using namespace lockscope::report;
using Json = nlohmann::json;

namespace {

constexpr const char* kPath = "/recordings/x.data.lockrec.json";
constexpr const char* kBuildId = "4c3a5e1fd1b0d0e1c7e2a0f6b1f5a3d2c1b0a998";

// What lockrec writes for a kprobe recording without --release on a kernel without lockdep
// (trimmed: fewer probes and modules).
Json kprobe_file() {
  return {
      {"format_version", 1},
      {"perf_data", "x.data"},
      {"kallsyms", "x.data.kallsyms"},
      {"mode", "kprobe"},
      {"kernel", {{"release", "6.1.0-56-amd64"}, {"machine", "x86_64"}, {"build_id", kBuildId}}},
      {"modules", Json::array({{{"name", "ext4"},
                                {"base_address", "0xffffffffc0a00000"},
                                {"size", 1},
                                {"sections", {{".text", "0xffffffffc0a01000"}}}}})},
      {"events", {"lockrec:_raw_spin_lock", "lockrec:mutex_lock"}},
      {"perf_record", {"perf", "record"}},
      {"perf_probe", {"perf", "probe"}},
      {"command", {"sh", "-c", "echo 'two\nlines'"}},
      {"command_status", {{"exit_code", 0}}},
      {"probes", Json::array({{{"event", "lockrec:_raw_spin_lock"}, {"function", "_raw_spin_lock"}},
                              {{"event", "lockrec:mutex_lock"}, {"function", "mutex_lock"}}})},
      {"skipped", Json::array({
                      {{"function", "_raw_spin_lock_nested"}, {"role", "acquire"}, {"reason", "not in this kernel"}},
                      {{"function", "_raw_spin_trylock"}, {"role", "trylock-entry"}, {"reason", "not in this kernel"}},
                      {{"function", "_raw_spin_trylock"}, {"role", "trylock-return"}, {"reason", "not in this kernel"}},
                      {{"function", "mutex_lock_nested"}, {"role", "acquire"}, {"reason", "not in this kernel"}},
                      {{"function", "down_read_nested"}, {"role", "acquire"}, {"reason", "not in this kernel"}},
                      {{"function", "_raw_spin_unlock"}, {"role", "release"}, {"reason", "needs --release"}},
                  })},
  };
}

LockrecSideFile parse(const Json& document) { return parse_lockrec_side_file(document.dump(), kPath); }

// The one-line message of parsing `text`, which must fail.
std::string error_of(const std::string& text) {
  try {
    parse_lockrec_side_file(text, kPath);
  } catch (const Error& error) {
    return error.what();
  }
  FAIL("no error for: " << text.substr(0, 200));
  return "";
}
std::string error_of(const Json& document) { return error_of(document.dump()); }

constexpr const char* kMalformedHint = "written by lockrec next to the recording: remove it or record again";

}  // namespace

TEST_CASE("a kprobe side file gives the mode, probes, skipped rows, kernel and command") {
  LockrecSideFile side = parse(kprobe_file());
  CHECK(side.path == kPath);
  CHECK(side.mode == "kprobe");
  CHECK(side.kernel_release == "6.1.0-56-amd64");
  CHECK(side.kernel_build_id == kBuildId);
  CHECK(side.probes == std::vector<std::string>{"lockrec:_raw_spin_lock", "lockrec:mutex_lock"});
  REQUIRE(side.skipped.size() == 6);
  CHECK(side.skipped[2].function == "_raw_spin_trylock");
  CHECK(side.skipped[2].role == "trylock-return");
  CHECK(side.skipped[2].reason == "not in this kernel");
  CHECK(side.command == std::vector<std::string>{"sh", "-c", "echo 'two\nlines'"});
  REQUIRE(side.command_status);
  CHECK(side.command_status->key == "exit_code");
  CHECK(side.command_status->value == 0);
}

TEST_CASE("a recording with no COMMAND (lockrec -a, -p PID) has a null command_status") {
  Json system_wide = kprobe_file();
  system_wide["command"] = Json::array();
  system_wide["command_status"] = nullptr;
  LockrecSideFile side = parse(system_wide);
  CHECK(side.command.empty());
  CHECK_FALSE(side.command_status);
}

TEST_CASE("the header line counts probes and names a few skipped functions per reason, each once") {
  CHECK(describe(parse(kprobe_file())) ==
        "recorded by lockrec in kprobe mode: 2 probes (not in this kernel: _raw_spin_lock_nested, "
        "_raw_spin_trylock, mutex_lock_nested and 1 more; needs --release: _raw_spin_unlock)");
  Json nothing_skipped = kprobe_file();
  nothing_skipped["skipped"] = Json::array();
  nothing_skipped["probes"].erase(1);
  CHECK(describe(parse(nothing_skipped)) == "recorded by lockrec in kprobe mode: 1 probe");
}

TEST_CASE("a contention side file says only contended acquisitions are seen") {
  Json contention = kprobe_file();
  contention["mode"] = "contention";
  contention["probes"] = Json::array();
  contention["skipped"] = Json::array();
  contention["kernel"]["build_id"] = nullptr;
  contention["command_status"] = {{"signal", 2}};
  LockrecSideFile side = parse(contention);
  CHECK(side.kernel_build_id.empty());
  REQUIRE(side.command_status);
  CHECK(side.command_status->key == "signal");
  CHECK(side.command_status->value == 2);
  CHECK(describe(side) == "recorded by lockrec in contention mode: only contended acquisitions are seen");
}

TEST_CASE("fields a later lockrec adds within the version are left alone") {
  Json document = kprobe_file();
  document["something_new"] = {{"deep", {1, 2, 3}}};
  document["probes"][0]["cost"] = 12;
  CHECK(parse(document).probes.size() == 2);
}

TEST_CASE("a side file that is not lockrec's is one error naming the file, the field and the fix") {
  struct Case {
    std::string what;
    std::string text;
    std::string expected;  // part of the message after the file name
  };
  auto with = [](const char* pointer, Json value) {
    Json document = kprobe_file();
    document[Json::json_pointer(pointer)] = std::move(value);
    return document.dump();
  };
  auto without = [](const char* key) {
    Json document = kprobe_file();
    document.erase(key);
    return document.dump();
  };
  Json many_probes = kprobe_file();
  many_probes["probes"] = Json::array();
  for (int i = 0; i < 1025; ++i) many_probes["probes"].push_back({{"event", "lockrec:x"}});
  const std::vector<Case> cases = {
      {"empty", "", "not JSON: "},
      {"not JSON", "perf.data\n", "not JSON: parse error at line 1, column 1: syntax error"},
      {"truncated", kprobe_file().dump().substr(0, 100), "not JSON: "},
      {"an array", "[1, 2]", "expected an object, found an array"},
      {"no version", without("format_version"), "format_version: missing"},
      {"version as text", with("/format_version", "1"), "format_version: expected an integer, found a string"},
      {"version 0", with("/format_version", 0), "format_version: 0 is not a version lockrec writes"},
      {"version as a fraction", with("/format_version", 1.5), "format_version: expected an integer, found a number"},
      {"no mode", without("mode"), "mode: missing"},
      {"unknown mode", with("/mode", "ebpf"), "mode: 'ebpf' is not a mode lockrec records in (kprobe, contention)"},
      {"mode as a number", with("/mode", 1), "mode: expected a string, found an integer"},
      {"kernel as a string", with("/kernel", "6.1"), "kernel: expected an object, found a string"},
      {"release as null", with("/kernel/release", nullptr), "kernel.release: expected a string, found null"},
      {"uppercase build-id", with("/kernel/build_id", "ABCD"), "kernel.build_id: 'ABCD' is not a build-id"},
      {"overlong build-id", with("/kernel/build_id", std::string(42, 'a')), "kernel.build_id: "},
      {"probes as an object", with("/probes", Json::object()), "probes: expected an array, found an object"},
      {"a probe without its event", with("/probes/1", Json::object()), "probes[1].event: missing"},
      {"too many probes", many_probes.dump(), "probes: 1025 entries, more than the 1024 lockrec could write"},
      {"a newline in a name", with("/skipped/3/function", "a\nlockanalyze: fake"),
       "skipped[3].function: has control characters"},
      {"an overlong name", with("/skipped/0/reason", std::string(513, 'x')),
       "skipped[0].reason: longer than 512 bytes"},
      {"command of numbers", with("/command/1", 7), "command[1]: expected a string, found an integer"},
      {"status with two keys", with("/command_status", {{"exit_code", 0}, {"signal", 9}}),
       "command_status: expected one key, exit_code or signal"},
      {"status of another key", with("/command_status", {{"code", 0}}),
       "command_status: expected one key, exit_code or signal"},
      {"status out of range", with("/command_status", {{"exit_code", 1000}}),
       "command_status.exit_code: 1000 is not an exit code or signal number"},
      {"status beyond int64", with("/command_status", {{"signal", UINT64_MAX}}),
       "command_status.signal: 18446744073709551615 is out of range"},
      {"deep nesting", with("/extra", Json::parse(std::string(40, '[') + std::string(40, ']'))),
       "nested deeper than 16 levels"},
      {"too many values", with("/extra", Json(std::vector<int>(500001, 0))), "more than 500000 JSON values"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    std::string message = error_of(c.text);
    CHECK_THAT(message, Catch::Matchers::StartsWith(std::string(kPath) + ": " + c.expected) &&
                            Catch::Matchers::Contains(kMalformedHint));
    CHECK(message.find('\n') == std::string::npos);
  }
}

TEST_CASE("a side file from a newer lockrec says to update") {
  Json document = kprobe_file();
  document["format_version"] = 2;
  document["mode"] = 7;  // a newer format may mean anything: the version is the only complaint
  CHECK(error_of(document) == std::string(kPath) +
                                  ": format_version 2 is newer than this lockanalyze reads (1); it was written "
                                  "by a newer lockrec: update lockscope, or remove the file to report without it");
}

TEST_CASE("a side file of another kernel than the recording's is refused") {
  LockrecSideFile side = parse(kprobe_file());
  CHECK_NOTHROW(check_same_kernel(side, "6.1.0-56-amd64", kBuildId));
  CHECK_NOTHROW(check_same_kernel(side, "", ""));  // a recording that names neither
  CHECK_THROWS_WITH(check_same_kernel(side, "6.12.0", ""),
                    std::string(kPath) +
                        ": its kernel release 6.1.0-56-amd64 is not the recording's (6.12.0); it "
                        "belongs to another recording: remove it, or put that recording's own side "
                        "files beside it");
  CHECK_THROWS_WITH(check_same_kernel(side, "6.1.0-56-amd64", "00ff"),
                    Catch::Matchers::StartsWith(std::string(kPath) + ": its kernel build-id " + kBuildId));
  side.kernel_build_id.clear();  // lockrec could not read it: nothing to compare
  CHECK_NOTHROW(check_same_kernel(side, "6.1.0-56-amd64", "00ff"));
}

TEST_CASE("the side file is found beside the recording, a missing one is no error, a fifo is one") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("lockscope-side-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string recording = (dir / "x.data").string();
  CHECK(lockrec_side_file_for(recording) == recording + ".lockrec.json");
  CHECK_FALSE(read_lockrec_side_file(recording).has_value());

  std::ofstream(recording + ".lockrec.json") << kprobe_file().dump(2);
  auto side = read_lockrec_side_file(recording);
  REQUIRE(side.has_value());
  CHECK(side->path == recording + ".lockrec.json");
  CHECK(side->mode == "kprobe");

  fs::remove(recording + ".lockrec.json");
  REQUIRE(mkfifo((recording + ".lockrec.json").c_str(), 0600) == 0);
  CHECK_THROWS_WITH(read_lockrec_side_file(recording),
                    Catch::Matchers::StartsWith(recording + ".lockrec.json: not a regular file; "));
  fs::remove_all(dir);
}
