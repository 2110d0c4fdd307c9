// Which probes lockrec adds on this kernel and what each fetches.
#include <lockscope/error.hpp>
#include <lockscope/recorder.hpp>

#include <algorithm>
#include <array>
#include <sstream>

namespace lockscope::recorder {

namespace {

using probes::Fetch;
using probes::ProbeRow;
using probes::Role;

// The register holding a function's first argument at its entry, per architecture as the kernel's
// /proc/sys/kernel/arch names it. perf probe spells registers as the kernel's kprobe_events does.
struct ArgumentRegister {
  std::string_view machine;
  std::string_view first_argument;
};
constexpr std::array<ArgumentRegister, 3> argument_registers = {{
    {"x86_64", "%di"},
    {"aarch64", "%x0"},
    {"arm64", "%x0"},
}};

// Which option a role needs before lockrec probes it; roles absent here are always probed.
struct OptionalRole {
  Role role;
  bool Options::*enabled_by;
  std::string_view option;
};
constexpr std::array<OptionalRole, 2> optional_roles = {{
    {Role::release, &Options::release, "--release"},
    {Role::trylock_return, &Options::trylock_result, "--trylock-result"},
}};

std::string_view first_argument_register(std::string_view machine) {
  auto match = std::find_if(argument_registers.begin(), argument_registers.end(),
                            [&](const ArgumentRegister& entry) { return entry.machine == machine; });
  if (match == argument_registers.end())
    throw Error("lockrec does not know the first-argument register of " + std::string(machine))
        .hint("pass --vmlinux with a vmlinux that has DWARF, or use --mode contention");
  return match->first_argument;
}

std::string event_name(const ProbeRow& row) {
  std::string name(row.function);
  if (row.role == Role::trylock_return) name += probes::return_event_suffix;
  return name;
}

// The perf probe -a argument: "lockrec:EVENT=FUNCTION[%return] ARG". Every value is fetched as x64
// so the lock pointer and the result read the same with and without DWARF.
// A return probe is asked for by the bare function name: perf probe appends the return suffix
// itself, even to a name it is given (perf 6.1 turned "X__return" into "X__return__return" in the
// guest test), so the event it creates is event_name(row).
std::string probe_definition(const ProbeRow& row, const Options& options, std::string_view machine) {
  std::string definition = std::string(probe_group) + ":" + std::string(row.function) + "=" + std::string(row.function);
  if (row.fetch == Fetch::return_value) return definition + "%return ret=$retval";
  std::string source =
      options.vmlinux.empty() ? std::string(first_argument_register(machine)) : std::string(row.parameter);
  return definition + " lock=" + source + ":x64";
}

}  // namespace

ProbePlan plan_probes(const std::set<std::string, std::less<>>& kernel_functions,
                      const std::set<std::string, std::less<>>& blacklist, std::string_view machine,
                      const Options& options) {
  ProbePlan plan;
  for (const ProbeRow& row : probes::probe_table) {
    auto skip = [&](std::string reason) { plan.skipped.push_back({&row, std::move(reason)}); };
    auto needs_option = std::find_if(optional_roles.begin(), optional_roles.end(),
                                     [&](const OptionalRole& entry) { return entry.role == row.role; });
    if (!kernel_functions.contains(row.function))
      skip("not in this kernel");
    else if (blacklist.contains(row.function))
      skip("on the kernel's kprobe blacklist");
    else if (needs_option != optional_roles.end() && !(options.*(needs_option->enabled_by)))
      skip("needs " + std::string(needs_option->option));
    else
      plan.chosen.push_back(
          {&row, std::string(probe_group) + ":" + event_name(row), probe_definition(row, options, machine)});
  }
  return plan;
}

ProbePlan plan_probes(const KernelView& kernel, const Options& options) {
  return plan_probes(kernel.kernel_functions(), kernel.kprobe_blacklist(), kernel.machine(), options);
}

std::vector<std::string> ProbePlan::events() const {
  std::vector<std::string> names;
  for (const auto& probe : chosen) names.push_back(probe.event);
  return names;
}

std::string format_skipped_table(const ProbePlan& plan) {
  size_t width = 8;
  for (const auto& skipped : plan.skipped) width = std::max(width, event_name(*skipped.row).size());
  std::ostringstream table;
  table << "lockrec: skipped probes:\n";
  for (const auto& skipped : plan.skipped) {
    std::string name = event_name(*skipped.row);
    table << "  " << name << std::string(width + 2 - name.size(), ' ') << skipped.reason << "\n";
  }
  return table.str();
}

}  // namespace lockscope::recorder
