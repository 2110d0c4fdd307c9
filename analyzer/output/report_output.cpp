#include "report_output.hpp"

#include <array>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/graphviz.hpp>
#include <cinttypes>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lockscope/lock_events.hpp"

namespace lockscope::report {
namespace {

// Not boost::algorithm::join: inlined into write_text at -O3, GCC 12 reports a false -Wrestrict
// in it (the Release build broke).
std::string join(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

using Json = nlohmann::ordered_json;

std::vector<std::string> context_names(uint8_t mask) {
  std::vector<std::string> names;
  for (auto context : {ExecContext::task, ExecContext::softirq, ExecContext::hardirq, ExecContext::nmi}) {
    if (mask & (1u << static_cast<unsigned>(context))) names.emplace_back(context_name(context));
  }
  return names;
}

// ---- lockdep findings (shared by text and JSON) ----

// A lock as a finding names it: the symbolizer's name, else its address.
std::string lock_name(const Report& report, uint64_t address) {
  const symbolizer::DataName& data = report.namer->data(address);
  return data.found ? data.name : hex(address);
}

// perf script's time: seconds with microseconds.
std::string seconds(uint64_t time_ns) {
  char text[32];
  snprintf(text, sizeof text, "%" PRIu64 ".%06" PRIu64, time_ns / 1000000000, time_ns % 1000000000 / 1000);
  return text;
}

// Lines of a table of CPUs, one column each, in lockdep's layout.
class ScenarioTable {
 public:
  explicit ScenarioTable(size_t cpus) {
    std::string head, rule;
    for (size_t cpu = 0; cpu < cpus; ++cpu) {
      head += pad("      CPU" + std::to_string(cpu), cpu + 1 < cpus);
      rule += pad("      ----", cpu + 1 < cpus);
    }
    lines_ = {head, rule};
  }
  // A step on one CPU: the first column's at the margin, the others' under their heading.
  void add(size_t cpu, const std::string& text) {
    lines_.push_back(std::string(cpu == 0 ? 2 : cpu * kWidth + 6, ' ') + text);
  }
  std::vector<std::string> finish() {
    lines_.push_back("");
    lines_.push_back(" *** DEADLOCK ***");
    return std::move(lines_);
  }

 private:
  static constexpr size_t kWidth = 24;
  static std::string pad(std::string text, bool more) {
    if (more && text.size() < kWidth) text.resize(kWidth, ' ');
    return text;
  }
  std::vector<std::string> lines_;
};

// The unsafe scenario lockdep prints with each finding, with the locks' names.
// A finding's lock: by its class when the finding is about a class of dynamic locks.
std::string lock_name(const Report& report, const lockdep::FindingLock& lock) {
  return lock.lock_class.empty() ? lock_name(report, lock.address) : lock.lock_class + " (dynamic)";
}

std::vector<std::string> scenario(const Report& report, const lockdep::Finding& finding) {
  auto lock = [&](size_t index) { return "lock(" + lock_name(report, finding.locks[index]) + ");"; };
  bool soft = finding.kind == lockdep::FindingKind::softirq_inconsistent ||
              finding.kind == lockdep::FindingKind::softirq_safe_to_unsafe;
  switch (finding.kind) {
    case lockdep::FindingKind::irq_inconsistent:
    case lockdep::FindingKind::softirq_inconsistent: {
      ScenarioTable table(1);
      table.add(0, lock(0));
      table.add(0, "<Interrupt>");
      table.add(0, "  " + lock(0));
      return table.finish();
    }
    case lockdep::FindingKind::lock_order_cycle: {
      // CPU i holds lock i and waits for the next one, which the next CPU holds.
      size_t count = finding.locks.size();
      ScenarioTable table(count);
      for (size_t cpu = 0; cpu < count; ++cpu) table.add(cpu, lock(cpu));
      for (size_t cpu = 0; cpu < count; ++cpu) table.add(cpu, lock((cpu + 1) % count));
      return table.finish();
    }
    case lockdep::FindingKind::irq_safe_to_unsafe:
    case lockdep::FindingKind::softirq_safe_to_unsafe: {
      ScenarioTable table(2);
      table.add(0, lock(1));
      table.add(1, soft ? "local_bh_disable();" : "local_irq_disable();");
      table.add(1, lock(0));
      table.add(1, lock(1));
      table.add(0, "<Interrupt>");
      table.add(0, "  " + lock(0));
      return table.finish();
    }
  }
  return {};
}

// ---- JSON ----

Json frame_json(const Frame& frame) {
  Json inlines = Json::array();
  for (const auto& inl : frame.inlines) {
    inlines.push_back({{"function", inl.function}, {"file", inl.file}, {"line", inl.line}});
  }
  return {{"address", hex(frame.address)},
          {"symbol", frame.symbol},
          {"inlines", inlines},
          {"file", frame.file},
          {"line", frame.line}};
}

Json stack_json(const std::vector<const Frame*>& frames) {
  Json out = Json::array();
  for (const Frame* frame : frames) out.push_back(frame_json(*frame));
  return out;
}

Json holder_json(const Report& report, const HolderEntry& entry) {
  const model::Holder& holder = *entry.holder;
  const model::HolderLock& pair = *entry.pair;
  Json stacks = Json::array();
  for (size_t i = 1; i < pair.stacks.size(); ++i) stacks.push_back(stack_json(report.stack(pair.stacks[i])));
  Json out = {{"holder", holder.label()},
              {"pid", holder.pid},
              {"comm", holder.is_pseudo() ? holder.label() : holder.comm},
              {"generation", holder.generation},
              {"kernel_thread", holder.is_kernel_thread()},
              {"acquisitions", pair.acquisitions},
              {"kinds", Json::array()},
              {"flavours", model::flavour_names(pair.flavour_mask)},
              {"contexts", context_names(pair.context_mask)},
              {"irqs_off_at_entry", pair.irqs_off_at_entry},
              {"trylock_failed", pair.trylock_failed},
              {"first_time_ns", pair.first_time},
              {"first_stack", pair.stacks.empty() ? Json::array() : stack_json(report.stack(pair.stacks[0]))},
              {"more_stacks", stacks}};
  Json kinds = Json::array();
  for (size_t i = 0; i < model::kAccessCount; ++i) {
    if (pair.access_mask & (1u << i)) kinds.push_back(model::access_name(static_cast<model::Access>(i)));
  }
  out["kinds"] = kinds;
  if (holder.is_pseudo()) {
    out["interrupted"] = entry.interrupted;
    out["interrupted_more"] = pair.interrupted_more;
  }
  return out;
}

Json finding_json(const Report& report, const lockdep::Finding& finding) {
  auto lock_json = [&](uint64_t address) {
    return Json{{"name", lock_name(report, address)}, {"address", hex(address)}};
  };
  Json locks = Json::array();
  for (const auto& lock : finding.locks) {
    Json entry = lock_json(lock.address);
    entry["kind"] = lock.kind;
    entry["class"] = lock.lock_class.empty() ? Json() : Json(lock.lock_class);
    locks.push_back(std::move(entry));
  }
  Json evidence = Json::array();
  for (const auto& item : finding.evidence) {
    Json entry;
    if (item.type == lockdep::Evidence::Type::usage) {
      entry = {{"type", "usage"}, {"usage", item.usage}, {"lock", lock_json(item.lock)}};
    } else {
      entry = {{"type", "edge"}, {"held", lock_json(item.held_lock)}, {"acquired", lock_json(item.lock)}};
    }
    entry["holder"] = item.holder;
    entry["first_time_ns"] = item.time_ns;
    entry["count"] = item.count;
    if (item.type == lockdep::Evidence::Type::edge) {
      entry["last_time_ns"] = item.last_time_ns;
      entry["held_stack"] = stack_json(report.namer->stack(item.held_stack));
    }
    entry["first_stack"] = stack_json(report.namer->stack(item.stack));
    evidence.push_back(std::move(entry));
  }
  return {{"kind", lockdep::kind_name(finding.kind)},
          {"title", finding.title},
          {"locks", locks},
          {"evidence", evidence},
          {"holders", finding.holders},
          {"scenario", scenario(report, finding)},
          {"caveat", finding.caveat.empty() ? Json() : Json(finding.caveat)}};
}

// What lockrec's side file says about how the recording was made.
Json lockrec_json(const LockrecSideFile& side) {
  Json skipped = Json::array();
  for (const auto& probe : side.skipped) {
    skipped.push_back({{"function", probe.function}, {"role", probe.role}, {"reason", probe.reason}});
  }
  Json status;  // null: no COMMAND ran (lockrec -a, or -p PID)
  if (side.command_status) status[side.command_status->key] = side.command_status->value;
  return {{"file", side.path},
          {"mode", side.mode},
          {"kernel_release", side.kernel_release},
          {"build_id", side.kernel_build_id.empty() ? Json() : Json(side.kernel_build_id)},
          {"probes", side.probes},
          {"skipped", skipped},
          {"command", side.command},
          {"command_status", status}};
}

// Streamed: one small document per lock, so memory stays that of one lock however many there are.
void write_json(const Report& report, std::ostream& out) {
  const Header& h = report.header;
  Json head = {{"schema", "lockscope-report"}, {"version", kReportSchemaVersion}};
  head["recording"] = {{"file", h.recording},
                       {"kernel", h.kernel},
                       {"hostname", h.hostname},
                       {"perf_version", h.perf_version},
                       {"nr_cpus", h.nr_cpus},
                       {"duration_s", h.duration_s},
                       {"lock_events", h.lock_events},
                       {"acquisitions", h.acquisitions},
                       {"lost_events", h.lost_events},
                       {"lost_samples", h.lost_samples},
                       {"lost", h.lost()},
                       {"holders", h.holders},
                       {"locks", h.locks},
                       {"contention_recording", h.contention_recording},
                       {"symbols", h.symbol_source},
                       {"notes", h.notes}};
  // Only with a side file, so reports of other recordings stay as they were.
  if (h.lockrec) head["recording"]["lockrec"] = lockrec_json(*h.lockrec);
  head["filters"] = {{"min_holders", report.filters.min_holders},
                     {"pids", report.filters.pids},
                     {"comms", report.filters.comms},
                     {"locks", report.filters.locks},
                     {"exclude_idle", report.filters.exclude_idle}};
  std::string text = head.dump();
  text.pop_back();  // the closing brace: the arrays follow
  out << text << ",\n\"findings\":[";
  for (size_t i = 0; i < report.findings.size(); ++i) {
    out << (i ? ",\n" : "\n") << finding_json(report, report.findings[i]).dump();
  }
  out << "\n],\n\"locks\":[";
  for (size_t i = 0; i < report.locks.size(); ++i) {
    const LockEntry& lock = report.locks[i];
    Json holders = Json::array();
    for (const auto& holder : lock.holders) holders.push_back(holder_json(report, holder));
    Json entry = {{"address", hex(lock.lock->address)},
                  {"name", lock.name.empty() ? Json() : Json(lock.name)},
                  {"class", lock.lock_class.empty() ? Json() : Json(lock.lock_class)},
                  {"kind", lock.kind},
                  {"storage", name_of(lock.storage)},
                  {"symbol", lock.symbol},
                  {"offset", lock.offset},
                  {"section", lock.section},
                  {"type", lock.type},
                  {"percpu", lock.percpu},
                  {"acquisitions", lock.acquisitions},
                  {"instances", lock.instances},
                  {"holders", holders}};
    out << (i ? ",\n" : "\n") << entry.dump();
  }
  out << "\n],\n\"pairs\":[";
  for (size_t i = 0; i < report.pairs.size(); ++i) {
    const HolderPair& pair = report.pairs[i];
    Json shared = Json::array();
    for (size_t index : pair.shared_locks) shared.push_back(report.locks[index].display_name());
    Json entry = {{"holders", {pair.first->label(), pair.second->label()}}, {"shared_locks", shared}};
    out << (i ? ",\n" : "\n") << entry.dump();
  }
  out << "\n],\n\"groups\":[";
  for (size_t i = 0; i < report.groups.size(); ++i) {
    const Group& group = report.groups[i];
    Json holders = Json::array(), locks_in_group = Json::array();
    for (const auto* holder : group.holders) holders.push_back(holder->label());
    for (size_t index : group.locks) locks_in_group.push_back(report.locks[index].display_name());
    out << (i ? ",\n" : "\n") << Json{{"holders", holders}, {"locks", locks_in_group}}.dump();
  }
  out << "\n],\n\"contention\":[";
  for (size_t i = 0; i < report.contention.size(); ++i) {
    const auto& row = report.contention[i];
    Json entry = {{"caller", row.caller},           {"type", row.type},
                  {"contended", row.contended},     {"total_wait_ns", row.total_wait_ns},
                  {"max_wait_ns", row.max_wait_ns}, {"min_wait_ns", row.min_wait_ns},
                  {"avg_wait_ns", row.avg_wait_ns}};
    out << (i ? ",\n" : "\n") << entry.dump();
  }
  out << "\n]}\n";
}

// ---- text ----

void write_frame(std::ostream& out, const Frame& frame, std::string_view indent) {
  out << indent << frame.symbol;
  if (!frame.file.empty()) out << "  " << frame.file << ":" << frame.line;
  out << "\n";
  for (const auto& inl : frame.inlines) {
    out << indent << "    inlined " << inl.function;
    if (!inl.file.empty()) out << "  " << inl.file << ":" << inl.line;
    out << "\n";
  }
}

void write_stack(std::ostream& out, const std::vector<const Frame*>& frames, const TextOptions& options) {
  size_t shown = 0;
  for (const Frame* frame : frames) {
    if (shown++ == options.frames_per_stack) {
      out << "        ...\n";
      break;
    }
    write_frame(out, *frame, "        ");
  }
}

// lockdep's findings, in its words, each with the stacks and holders that prove it.
void write_findings_text(const Report& report, const TextOptions& options, std::ostream& out) {
  out << "\nLockdep findings (lockdep's rules applied to the recording): " << report.findings.size() << "\n";
  for (size_t i = 0; i < report.findings.size(); ++i) {
    const lockdep::Finding& finding = report.findings[i];
    out << "\n[" << i + 1 << "] " << lockdep::kind_name(finding.kind) << ": " << finding.title << "\n";
    std::vector<std::string> names;
    for (const auto& lock : finding.locks) {
      names.push_back(lock_name(report, lock));
      out << "    lock " << names.back() << "  [" << lock.kind << "]  " << hex(lock.address) << "\n";
    }
    if (finding.kind == lockdep::FindingKind::lock_order_cycle) {
      out << "    cycle: " << join(names, " -> ") << " -> " << names.front() << "\n";
    }
    if (!finding.caveat.empty()) out << "    caveat: " << finding.caveat << "\n";
    for (const auto& item : finding.evidence) {
      if (item.type == lockdep::Evidence::Type::usage) {
        out << "    {" << item.usage << "} of " << lock_name(report, item.lock) << ": " << item.count
            << " acquisitions, first by " << item.holder << " at " << seconds(item.time_ns) << ":\n";
        write_stack(out, report.namer->stack(item.stack), options);
        continue;
      }
      out << "    " << lock_name(report, item.held_lock) << " -> " << lock_name(report, item.lock) << ": seen "
          << item.count << (item.count == 1 ? " time" : " times") << ", first by " << item.holder << " at "
          << seconds(item.time_ns);
      if (item.count > 1) out << ", last at " << seconds(item.last_time_ns);
      out << "\n";
      out << "      holding " << lock_name(report, item.held_lock) << ", taken at:\n";
      write_stack(out, report.namer->stack(item.held_stack), options);
      out << "      acquiring " << lock_name(report, item.lock) << " at:\n";
      write_stack(out, report.namer->stack(item.stack), options);
    }
    if (!finding.holders.empty()) out << "    holders: " << join(finding.holders, ", ") << "\n";
    out << "    Possible unsafe locking scenario:\n\n";
    for (const auto& line : scenario(report, finding)) out << (line.empty() ? "" : "    ") << line << "\n";
  }
}

void write_text(const Report& report, const TextOptions& options, std::ostream& out) {
  const Header& h = report.header;
  char line[512];
  out << "lockscope report: " << h.recording << "\n";
  snprintf(line, sizeof line,
           "kernel %s, host %s, %u CPUs, %.3f s, %" PRIu64 " lock events, %" PRIu64 " acquisitions, %" PRIu64
           " holders, %" PRIu64 " locks, lost %" PRIu64 "\n",
           h.kernel.empty() ? "?" : h.kernel.c_str(), h.hostname.empty() ? "?" : h.hostname.c_str(), h.nr_cpus,
           h.duration_s, h.lock_events, h.acquisitions, h.holders, h.locks, h.lost());
  out << line;
  if (h.lockrec) out << describe(*h.lockrec) << "\n";
  out << "symbols: " << h.symbol_source << "\n";
  for (const auto& note : h.notes) out << "note: " << note << "\n";

  write_findings_text(report, options, out);

  out << "\nLocks shared by the most holders (at least " << report.filters.min_holders << "): " << report.locks.size()
      << "\n";
  size_t shown = 0;
  for (const auto& lock : report.locks) {
    if (shown++ == options.top_locks) {
      out << "\n... " << report.locks.size() - options.top_locks
          << " more locks (--top N shows more, --format json shows all)\n";
      break;
    }
    out << "\n" << lock.display_name() << "  [" << lock.kind << "]  " << hex(lock.lock->address);
    if (!lock.type.empty()) out << "  (" << lock.type << ")";
    out << "  " << name_of(lock.storage);
    out << "\n  " << lock.holders.size() << " holders, " << lock.acquisitions << " acquisitions\n";
    size_t holders_shown = 0;
    for (const auto& entry : lock.holders) {
      if (holders_shown++ == options.holders_per_lock) {
        out << "    ... " << lock.holders.size() - options.holders_per_lock << " more holders\n";
        break;
      }
      const model::HolderLock& pair = *entry.pair;
      snprintf(line, sizeof line, "  %-24s %8" PRIu64 " acq  %s  %s%s\n", entry.holder->label().c_str(),
               pair.acquisitions, join(model::flavour_names(pair.flavour_mask), ",").c_str(),
               join(context_names(pair.context_mask), ",").c_str(),
               pair.irqs_off_at_entry ? (" irqs-off:" + std::to_string(pair.irqs_off_at_entry)).c_str() : "");
      out << line;
      if (!entry.interrupted.empty()) {
        out << "      interrupted: " << join(entry.interrupted, " ");
        if (pair.interrupted_more) out << " and " << pair.interrupted_more << " more";
        out << "\n";
      }
      if (!pair.stacks.empty()) {
        size_t frames = 0;
        for (const Frame* frame : report.stack(pair.stacks.front())) {
          if (frames++ == options.frames_per_stack) {
            out << "        ...\n";
            break;
          }
          write_frame(out, *frame, "        ");
        }
      }
    }
  }

  out << "\nGroups of holders coupled through shared locks: " << report.groups.size() << "\n";
  for (size_t i = 0; i < report.groups.size() && i < options.top_locks; ++i) {
    const Group& group = report.groups[i];
    std::vector<std::string> holders;
    for (const auto* holder : group.holders) holders.push_back(holder->label());
    out << "  group " << i + 1 << ": " << group.holders.size() << " holders through " << group.locks.size()
        << " locks: " << join(holders, " ") << "\n";
  }

  if (h.contention_recording) {
    out << "\nLock contention, as `perf lock contention -i` shows it (" << report.contention.size()
        << " call stacks):\n";
    out << contention::format_table(report.contention, options.top_locks);
  }

  out << "\nPairs of holders sharing the most locks:\n";
  for (size_t i = 0; i < report.pairs.size() && i < options.top_locks; ++i) {
    const HolderPair& pair = report.pairs[i];
    std::vector<std::string> names;
    for (size_t index : pair.shared_locks) {
      if (names.size() == 6) {
        names.push_back("...");
        break;
      }
      names.push_back(report.locks[index].display_name());
    }
    out << "  " << pair.first->label() << " & " << pair.second->label() << ": " << pair.shared_locks.size()
        << " locks (" << join(names, ", ") << ")\n";
  }
}

// ---- dot ----

void write_dot(const Report& report, std::ostream& out) {
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS>;
  std::vector<std::string> labels, shapes;
  std::map<const model::Holder*, size_t> holder_vertex;
  for (const auto& lock : report.locks) {
    for (const auto& holder : lock.holders) {
      if (holder_vertex.try_emplace(holder.holder, labels.size()).second) {
        labels.push_back(holder.holder->label());
        shapes.push_back("box");
      }
    }
  }
  std::vector<size_t> lock_vertex;
  for (const auto& lock : report.locks) {
    lock_vertex.push_back(labels.size());
    labels.push_back(lock.display_name());
    shapes.push_back("ellipse");
  }
  Graph graph(labels.size());
  for (size_t i = 0; i < report.locks.size(); ++i) {
    for (const auto& holder : report.locks[i].holders)
      boost::add_edge(holder_vertex[holder.holder], lock_vertex[i], graph);
  }
  auto vertex_writer = [&](std::ostream& stream, size_t vertex) {
    stream << "[label=" << boost::escape_dot_string(labels[vertex]) << ", shape=" << shapes[vertex] << "]";
  };
  boost::write_graphviz(out, graph, vertex_writer);
}

struct OutputFormat {
  std::string_view name;
  void (*write)(const Report&, const TextOptions&, std::ostream&);
};
constexpr std::array kFormats = {
    OutputFormat{"text", write_text},
    OutputFormat{"json", [](const Report& r, const TextOptions&, std::ostream& o) { write_json(r, o); }},
    OutputFormat{"dot", [](const Report& r, const TextOptions&, std::ostream& o) { write_dot(r, o); }},
};

}  // namespace

std::vector<std::string> output_formats() {
  std::vector<std::string> names;
  for (const auto& format : kFormats) names.emplace_back(format.name);
  return names;
}

void write_report(const Report& report, std::string_view format, const TextOptions& options, std::ostream& out) {
  for (const auto& candidate : kFormats) {
    if (candidate.name == format) {
      candidate.write(report, options, out);
      return;
    }
  }
}

}  // namespace lockscope::report
