// The probe table against a recording nobody here made the event names for: every event of the
// shared Debian 6.1 kprobe recording, as `perf evlist` names it, maps back to the right table row.
#include "process.hpp"

#include <lockscope/probe_table.hpp>

#include <catch2/catch.hpp>

#include <sys/wait.h>

#include <cstdlib>
#include <iostream>
#include <sstream>

using namespace lockscope::recorder;
namespace probes = lockscope::probes;

namespace {

[[noreturn]] void skip(const std::string& why) {
  std::cout << "SKIP: " << why << std::endl;
  std::exit(77);
}

bool succeeded(const Captured& run) {
  return run.started && WIFEXITED(run.wait_status) && WEXITSTATUS(run.wait_status) == 0;
}

}  // namespace

TEST_CASE("every event of the shared kprobe recording maps to its table row", "[shared]") {
  SignalWatch signals;
  Captured recording = run_and_capture({LOCKSCOPE_SHARED_RECORDING_SCRIPT}, signals);
  if (!succeeded(recording)) skip("no shared recording: " + recording.output);
  std::string path = recording.output.substr(0, recording.output.find('\n'));
  Captured evlist = run_and_capture({"perf", "evlist", "-i", path}, signals);
  if (!evlist.started) skip("perf is not installed (Debian: linux-perf)");
  REQUIRE(succeeded(evlist));

  std::istringstream lines(evlist.output);
  std::string event;
  std::vector<std::string> events;
  while (std::getline(lines, event)) {
    // perf adds its own dummy:HG event (sideband records) to every recording.
    if (event.empty() || event.starts_with("#") || event.starts_with("dummy:")) continue;
    events.push_back(event);
  }
  // The recording's README lists these eight probes.
  REQUIRE(events.size() == 8);
  for (const auto& name : events) {
    INFO(name);
    const probes::ProbeRow* row = probes::find_probe_by_event(name);
    REQUIRE(row != nullptr);
    bool is_return = name.ends_with("__return");
    CHECK((row->role == probes::Role::trylock_return) == is_return);
    CHECK((row->fetch == probes::Fetch::return_value) == is_return);
  }
  CHECK(probes::find_probe_by_event("probe:_raw_spin_lock_irq")->flavour == probes::Flavour::irq);
  CHECK(probes::find_probe_by_event("probe:_raw_write_lock")->kind == probes::LockKind::rwlock_write);
  CHECK(probes::find_probe_by_event("probe:mutex_lock")->kind == probes::LockKind::mutex);
}
