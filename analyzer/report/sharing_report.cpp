#include "sharing_report.hpp"
#include "hex_number.hpp"

#include <algorithm>
#include <array>
#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/connected_components.hpp>
#include <cinttypes>
#include <map>

#include "lockscope/probe_table.hpp"

namespace lockscope::report {
namespace {

// The lock implementation beyond the probed entry points: the slow paths a contended acquisition
// runs through before contention_begin fires, named as in kernel/locking/.
constexpr std::array<std::string_view, 10> kLockImplementationPrefixes = {
    "queued_",      "native_queued_", "__pv_queued_", "do_raw_", "_raw_",
    "__mutex_lock", "mutex_lock",     "rwsem_down_",  "__down_", "percpu_down_"};

bool is_lock_function(std::string_view function) {
  if (std::any_of(probes::probe_table.begin(), probes::probe_table.end(),
                  [&](const probes::ProbeRow& row) { return row.function == function; })) {
    return true;
  }
  return std::any_of(kLockImplementationPrefixes.begin(), kLockImplementationPrefixes.end(),
                     [&](std::string_view prefix) { return function.starts_with(prefix); });
}

// A frame of the lock implementation: by name, or with DWARF by its source in kernel/locking/.
bool is_lock_frame(const Frame& frame) {
  return is_lock_function(frame.function) || frame.file.starts_with("kernel/locking/");
}

bool holder_passes(const model::Holder& holder, const Filters& filters) {
  if (filters.exclude_idle && holder.is_idle()) return false;
  if (filters.kernel_threads && holder.is_kernel_thread() != *filters.kernel_threads && !holder.is_pseudo()) {
    return false;
  }
  if (!filters.pids.empty() && std::find(filters.pids.begin(), filters.pids.end(), holder.pid) == filters.pids.end()) {
    return false;
  }
  if (!filters.comms.empty() &&
      std::find(filters.comms.begin(), filters.comms.end(), holder.comm) == filters.comms.end()) {
    return false;
  }
  return true;
}

bool lock_passes(const LockEntry& lock, const Filters& filters) {
  if (filters.locks.empty()) return true;
  for (const auto& wanted : filters.locks) {
    if (wanted == lock.name || wanted == lock.lock_class || wanted == lock.symbol) return true;
    if (wanted.starts_with("0x") && parse_hex(wanted) == lock.lock->address) {
      return true;
    }
  }
  return false;
}

// The class of a dynamic lock: the first caller outside the lock functions, by the innermost
// function inlined at that call (rq_lock inlined into __schedule names the rq lock better).
std::string lock_class(const std::vector<const Frame*>& frames) {
  for (const Frame* frame : frames) {
    if (frame->function.empty() || is_lock_frame(*frame)) continue;
    for (const auto& inl : frame->inlines) {
      if (!is_lock_function(inl.function)) return inl.function;
    }
    return frame->function;
  }
  return "";
}

const model::HolderLock* earliest_pair(const std::vector<const model::HolderLock*>& pairs) {
  return *std::min_element(pairs.begin(), pairs.end(),
                           [](const auto* a, const auto* b) { return a->first_time < b->first_time; });
}

// One pair per holder over several locks of a class: counts summed, sets joined, the earliest
// pair's stacks kept. The summed pairs live in `storage`.
std::vector<const model::HolderLock*> merge_by_holder(const std::vector<const model::HolderLock*>& pairs,
                                                      std::deque<model::HolderLock>& storage) {
  std::map<uint32_t, model::HolderLock*> by_holder;
  std::vector<const model::HolderLock*> out;
  for (const model::HolderLock* pair : pairs) {
    auto [it, inserted] = by_holder.try_emplace(pair->holder, nullptr);
    if (inserted) {
      it->second = &storage.emplace_back(*pair);
      out.push_back(it->second);
      continue;
    }
    model::HolderLock& sum = *it->second;
    if (pair->first_time < sum.first_time) {
      sum.first_time = pair->first_time;
      sum.stacks = pair->stacks;
    }
    sum.acquisitions += pair->acquisitions;
    sum.trylock_failed += pair->trylock_failed;
    sum.irqs_off_at_entry += pair->irqs_off_at_entry;
    sum.access_mask |= pair->access_mask;
    sum.flavour_mask |= pair->flavour_mask;
    sum.context_mask |= pair->context_mask;
    for (uint32_t task : pair->interrupted_holders) sum.add_interrupted(task);
    sum.interrupted_more += pair->interrupted_more;
  }
  return out;
}

}  // namespace

std::string LockEntry::display_name() const {
  if (!name.empty()) return name;
  if (lock_class.empty() && !why_unnamed.empty()) return hex(lock->address) + " (" + why_unnamed + ")";
  if (!lock_class.empty() && instances > 1) {
    return lock_class + " (" + std::to_string(instances) + " dynamic locks)";
  }
  if (!lock_class.empty()) return lock_class + " (dynamic " + hex(lock->address) + ")";
  if (storage == Storage::unknown) return hex(lock->address) + " (where it lives is unknown: no symbols place it)";
  return hex(lock->address);
}

namespace {

// The kernel's virtual address layout, for what no symbol places. x86_64, from the kernel's
// Documentation/arch/x86/x86_64/mm.rst: the direct map, vmalloc and vmemmap lie between the start
// of the direct map (0xffff888000000000 with 4-level page tables, 0xff11000000000000 with 5-level;
// below the first, 4-level addresses are not canonical) and the cpu entry area, wherever KASLR
// moves their bases; the kernel image mapping is 1 GiB with KASLR, the modules above it. (Without KASLR the image
// mapping is 512 MiB and modules start at 0xffffffffa0000000: a module's lock is then found by the module symbols
// before this table.)
struct AddressRegion {
  std::string_view arch;
  uint64_t start;
  uint64_t end;  // exclusive
  Storage storage;
};
constexpr std::array<AddressRegion, 3> kAddressRegions = {{
    {"x86_64", 0xff11000000000000, 0xfffffe0000000000, Storage::dynamic},       // direct map, vmalloc, vmemmap
    {"x86_64", 0xffffffff80000000, 0xffffffffc0000000, Storage::static_image},  // kernel image mapping
    {"x86_64", 0xffffffffc0000000, 0xffffffffff000000, Storage::module},        // module mapping
}};

const AddressRegion* region_of(std::string_view arch, uint64_t address) {
  for (const auto& region : kAddressRegions) {
    if (region.arch == arch && address >= region.start && address < region.end) return &region;
  }
  return nullptr;
}

}  // namespace

std::string_view name_of(Storage storage) {
  switch (storage) {
    case Storage::static_image: return "static";
    case Storage::percpu: return "per-cpu";
    case Storage::module: return "module";
    case Storage::dynamic: return "dynamic";
    case Storage::unknown: return "unknown";
  }
  return "unknown";
}

bool Namer::in_kernel_image(uint64_t address) const {
  if (image_start_ && image_end_) return address >= *image_start_ && address < *image_end_;
  const AddressRegion* region = region_of(arch_, address);
  return image_start_ && address >= *image_start_ && region && region->storage == Storage::static_image;
}

Storage Namer::storage_of(uint64_t address) {
  const symbolizer::DataName& named = data(address);
  if (named.found && named.percpu) return Storage::percpu;
  if (in_kernel_image(address)) return Storage::static_image;
  if (modules_ != nullptr && modules_->name_data(address).found) return Storage::module;
  if (const AddressRegion* region = region_of(arch_, address)) return region->storage;
  // Named by a symbol outside any region this architecture's table knows: a kernel object still.
  return named.found ? Storage::static_image : Storage::unknown;
}

Namer::Namer(symbolizer::Symbolizer* symbolizer, symbolizer::Symbolizer* modules, std::string arch)
    : symbolizer_(symbolizer), modules_(modules), arch_(std::move(arch)) {
  if (symbolizer_ != nullptr) {
    image_start_ = symbolizer_->address_of("_text");
    for (const char* end : {"_end", "__bss_stop", "_edata"}) {
      image_end_ = symbolizer_->address_of(end);
      if (image_end_) break;
    }
  }
}

const symbolizer::DataName& Namer::data(uint64_t address) {
  auto [it, inserted] = data_.try_emplace(address);
  if (inserted) {
    if (symbolizer_ != nullptr) {
      it->second = symbolizer_->name_data(address);
    } else {
      it->second.why_unnamed = "no vmlinux or kallsyms given";
    }
    if (!it->second.found && modules_ != nullptr && !in_kernel_image(address)) {
      symbolizer::DataName in_module = modules_->name_data(address);
      if (in_module.found) it->second = std::move(in_module);
    }
  }
  return it->second;
}

const Frame& Namer::code(uint64_t address, bool is_return_address) {
  // One address is looked up two ways (as the first frame, and as a return address); the two
  // answers are cached apart by clearing the top bit of the key for return addresses, a bit every
  // kernel address has set.
  uint64_t key = is_return_address ? address & ~(1ull << 63) : address;
  auto [it, inserted] = code_.try_emplace(key);
  if (!inserted) return it->second;
  Frame& frame = it->second;
  frame.address = address;
  symbolizer::Symbolizer* source = symbolizer_;
  if (source != nullptr && modules_ != nullptr && !in_kernel_image(address)) source = modules_;
  if (source != nullptr) {
    symbolizer::CodeLocation location = source->name_code(address);
    if (location.found) {
      frame.function = location.function;
      frame.symbol = location.name();
      if (is_return_address && address > 0) {
        symbolizer::CodeLocation call = source->name_code(address - 1);
        if (call.found && call.function == location.function) location = std::move(call);
      }
      frame.inlines = std::move(location.inlines);
      frame.file = std::move(location.file);
      frame.line = location.line;
      return frame;
    }
  }
  frame.symbol = hex(address);
  return frame;
}

std::vector<const Frame*> Namer::stack(std::span<const uint64_t> frames) {
  std::vector<const Frame*> out;
  out.reserve(frames.size());
  for (size_t i = 0; i < frames.size(); ++i) out.push_back(&code(frames[i], i > 0));
  return out;
}

std::string dynamic_lock_class(Namer& namer, uint64_t address, std::span<const uint64_t> stack) {
  if (namer.data(address).found || namer.storage_of(address) != Storage::dynamic) return "";
  return lock_class(namer.stack(stack));
}

namespace {

void warn(Header& header, std::string text) {
  header.notes.push_back(text);
  header.warnings.push_back(std::move(text));
}

bool has_call_chains(const perf::Metadata& metadata) {
  return std::any_of(metadata.events.begin(), metadata.events.end(), [](const perf::EventDesc& event) {
    return (event.attr.sample_type & PERF_SAMPLE_CALLCHAIN) != 0;
  });
}

}  // namespace

namespace {

void fill_header(Header& header, const model::HolderModel& model, const perf::PerfDataReader& reader) {
  const perf::Metadata& metadata = reader.metadata();
  const model::ModelStats& stats = model.stats();
  header.recording = reader.path();
  header.kernel = metadata.os_release;
  header.hostname = metadata.hostname;
  header.perf_version = metadata.perf_version;
  header.nr_cpus = metadata.nr_cpus_online;
  header.duration_s =
      stats.last_time > stats.first_time ? static_cast<double>(stats.last_time - stats.first_time) / 1e9 : 0.0;
  header.lock_events = stats.lock_events;
  header.acquisitions = stats.acquisitions;
  header.lost_events = reader.stats().lost_events;
  header.lost_samples = reader.stats().lost_samples;
  header.holders = model.holders().size();
  header.locks = model.locks().size();
  header.contention_recording = model.is_contention_recording();
}

// Pairs by lock, only those that held the lock and pass the holder filters.
std::vector<std::vector<const model::HolderLock*>> held_pairs_by_lock(const model::HolderModel& model,
                                                                      const Filters& filters) {
  std::vector<std::vector<const model::HolderLock*>> pairs_by_lock(model.locks().size());
  for (const auto& pair : model.pairs()) {
    if (pair.acquisitions == 0) continue;
    if (!holder_passes(model.holders()[pair.holder], filters)) continue;
    pairs_by_lock[pair.lock].push_back(&pair);
  }
  return pairs_by_lock;
}

// Which locks count as one: each address alone, or every unnamed lock of one class together.
std::vector<std::vector<size_t>> lock_identities(
    const model::HolderModel& model, const std::vector<std::vector<const model::HolderLock*>>& pairs_by_lock,
    const Filters& filters, Report& report) {
  Namer& namer = *report.namer;
  std::vector<std::vector<size_t>> identities;
  if (filters.identity == LockIdentity::address) {
    for (size_t i = 0; i < pairs_by_lock.size(); ++i) identities.push_back({i});
  } else {
    std::map<std::string, size_t> by_class;
    for (size_t i = 0; i < pairs_by_lock.size(); ++i) {
      std::string key;
      uint64_t address = model.locks()[i].address;
      if (!pairs_by_lock[i].empty() && !namer.data(address).found && namer.storage_of(address) == Storage::dynamic) {
        key = lock_class(report.stack(earliest_pair(pairs_by_lock[i])->stacks.front()));
      }
      if (key.empty()) {
        identities.push_back({i});
        continue;
      }
      auto [it, inserted] = by_class.try_emplace(key, identities.size());
      if (inserted) identities.emplace_back();
      identities[it->second].push_back(i);
    }
  }
  return identities;
}

// The report's entry for one lock identity (one lock, or a class's locks merged), or nothing when
// the filters leave it out.
std::optional<LockEntry> lock_entry(const model::HolderModel& model, const std::vector<size_t>& members,
                                    std::vector<const model::HolderLock*> pairs, Report& report) {
  const Filters& filters = report.filters;
  Namer& namer = *report.namer;
  if (members.size() > 1) pairs = merge_by_holder(pairs, report.merged_pairs);
  if (pairs.empty() || pairs.size() < filters.min_holders) return std::nullopt;
  const model::Lock& lock = model.locks()[members.front()];
  LockEntry entry;
  entry.lock = &lock;
  entry.instances = members.size();
  uint32_t access_mask = 0;
  for (size_t index : members) access_mask |= model.locks()[index].access_mask;
  entry.kind = model::access_names(access_mask);
  const symbolizer::DataName& data = namer.data(lock.address);
  entry.storage = members.size() == 1 ? namer.storage_of(lock.address) : Storage::dynamic;
  if (!data.found && (entry.storage == Storage::static_image || entry.storage == Storage::module)) {
    // What to pass to name it: the symbols had no data symbol here (a kallsyms without
    // CONFIG_KALLSYMS_ALL, or none at all); the recorded kernel's vmlinux has them all.
    entry.why_unnamed = "unnamed " + std::string(name_of(entry.storage)) + ": " +
                        (data.why_unnamed.empty() ? "no symbol covers it" : data.why_unnamed) +
                        "; --vmlinux of the recorded kernel names it";
  }
  if (data.found && members.size() == 1) {
    entry.name = data.name;
    entry.symbol = data.symbol;
    entry.offset = data.offset;
    entry.section = data.section;
    entry.type = data.type;
    entry.percpu = data.percpu;
  }
  std::sort(pairs.begin(), pairs.end(), [](const auto* a, const auto* b) {
    if (a->acquisitions != b->acquisitions) return a->acquisitions > b->acquisitions;
    return a->first_time < b->first_time;
  });
  // The lock's first stack is that of the pair that took it first.
  const model::HolderLock* earliest = earliest_pair(pairs);
  if (entry.name.empty() && entry.storage == Storage::dynamic && !earliest->stacks.empty()) {
    entry.lock_class = lock_class(report.stack(earliest->stacks.front()));
  }
  for (const model::HolderLock* pair : pairs) {
    HolderEntry holder;
    holder.holder = &model.holders()[pair->holder];
    holder.pair = pair;
    for (uint32_t task : pair->interrupted_holders) {
      holder.interrupted.push_back(model.holders()[task].label());
    }
    entry.acquisitions += pair->acquisitions;
    entry.holders.push_back(std::move(holder));
  }
  if (!lock_passes(entry, filters)) return std::nullopt;
  return entry;
}

// Pairs of holders and the locks they share. A lock held by very many holders (tasklist_lock over
// a long build) would make its pairs quadratic in memory: 60,000 holders of one lock took 22 GB.
// It couples them all anyway, so it is left out of the pairs, and a note says so.
void add_holder_pairs(Report& report) {
  Header& header = report.header;
  std::map<std::pair<const model::Holder*, const model::Holder*>, std::vector<size_t>> shared;
  size_t locks_left_out_of_pairs = 0;
  for (size_t i = 0; i < report.locks.size(); ++i) {
    const auto& holders = report.locks[i].holders;
    if (holders.size() > kMaxHoldersForPairs) {
      ++locks_left_out_of_pairs;
      continue;
    }
    for (size_t a = 0; a < holders.size(); ++a) {
      for (size_t b = a + 1; b < holders.size(); ++b) {
        auto key = std::minmax(holders[a].holder, holders[b].holder);
        shared[{key.first, key.second}].push_back(i);
      }
    }
  }
  for (auto& [key, locks] : shared) report.pairs.push_back({key.first, key.second, std::move(locks)});
  if (locks_left_out_of_pairs > 0) {
    header.notes.push_back(std::to_string(locks_left_out_of_pairs) + " locks held by more than " +
                           std::to_string(kMaxHoldersForPairs) + " holders each were left out of the pairs of holders");
  }
  std::stable_sort(report.pairs.begin(), report.pairs.end(),
                   [](const auto& a, const auto& b) { return a.shared_locks.size() > b.shared_locks.size(); });
}

// Groups: connected components of the bipartite holder–lock graph of the reported locks.
void add_groups(Report& report) {
  using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::undirectedS>;
  std::map<const model::Holder*, size_t> holder_vertex;
  for (const auto& lock : report.locks) {
    for (const auto& holder : lock.holders) holder_vertex.try_emplace(holder.holder, holder_vertex.size());
  }
  size_t holder_count = holder_vertex.size();
  Graph graph(holder_count + report.locks.size());
  for (size_t i = 0; i < report.locks.size(); ++i) {
    for (const auto& holder : report.locks[i].holders) {
      boost::add_edge(holder_vertex[holder.holder], holder_count + i, graph);
    }
  }
  std::vector<size_t> component(boost::num_vertices(graph));
  size_t components = boost::connected_components(graph, component.data());
  std::vector<Group> groups(components);
  for (const auto& [holder, vertex] : holder_vertex) groups[component[vertex]].holders.push_back(holder);
  for (size_t i = 0; i < report.locks.size(); ++i) {
    groups[component[holder_count + i]].locks.push_back(i);
  }
  for (auto& group : groups) {
    if (group.holders.size() < 2) continue;
    std::sort(group.holders.begin(), group.holders.end(),
              [](const auto* a, const auto* b) { return a->pid != b->pid ? a->pid < b->pid : a->comm < b->comm; });
    report.groups.push_back(std::move(group));
  }
  std::stable_sort(report.groups.begin(), report.groups.end(),
                   [](const Group& a, const Group& b) { return a.holders.size() > b.holders.size(); });
}

// What a reader must know before trusting the numbers: damage, loss, sampling, an empty window.
void add_warnings(Header& header, const model::HolderModel& model, const perf::PerfDataReader& reader) {
  const model::ModelStats& stats = model.stats();
  // Damage first: a report read from part of a file must not pass for a whole one.
  for (const auto& damage : reader.stats().damage) warn(header, damage);
  // Loss above this share of the recorded events makes every count and first stack incomplete
  // enough that a reader must be told, on stderr and in the notes of every output format.
  constexpr double kLossWorthAWarning = 0.01;
  if (header.lost() > 0) {
    double share = static_cast<double>(header.lost()) / static_cast<double>(header.lost() + header.lock_events);
    if (share >= kLossWorthAWarning) {
      char percent[16];
      snprintf(percent, sizeof percent, "%.1f%%", share * 100);
      warn(header, "perf lost " + std::to_string(header.lost()) + " events (" + percent +
                       " of what the kernel produced): counts, holders and stacks are incomplete; record "
                       "again with larger buffers (perf record -m, e.g. -m 64M) or fewer events");
    }
  }
  if (stats.lock_events == 0) {
    // No summary: no metadata was ever read, so nothing was recorded either.
    warn(header, model.events_summary() ? explain_no_lock_events(*model.events_summary(), stats.samples)
                                        : "the recording holds nothing: nothing to report");
  } else if (!has_call_chains(reader.metadata())) {
    warn(header, "recorded without call chains: no stacks, callers or lock classes (record with -g)");
  }
  if (stats.sampled_lock_events > 0) {
    warn(header, "a sampled recording (perf record -F, or -c N): " + std::to_string(stats.sampled_lock_events) +
                     " lock events are samples that stand for " + std::to_string(stats.events_sampled_stand_for) +
                     " by their periods; acquisitions count samples, holders and locks seen only between "
                     "samples are missing, and waits and lock order pair events sampled apart");
  }
  if (stats.lock_events > 0 && stats.outside_window == stats.lock_events) {
    char span[96];
    snprintf(span, sizeof span, "%.6f to %.6f", static_cast<double>(stats.first_time) / 1e9,
             static_cast<double>(stats.last_time) / 1e9);
    warn(header, "--time selects none of the " + std::to_string(stats.lock_events) +
                     " lock events: the recording's lock events span " + span + " s (perf script's times)");
  }
  if (stats.trylock_results_without_entry > 0) {
    header.notes.push_back(std::to_string(stats.trylock_results_without_entry) +
                           " trylock results came without an entry probe, so their lock is "
                           "unknown (record with lockrec --trylock-result to pair them)");
  }
  if (stats.trylock_entries_without_result > 0) {
    header.notes.push_back(std::to_string(stats.trylock_entries_without_result) +
                           " trylocks have no result probe: counted as acquisitions");
  }
  if (header.contention_recording) {
    header.notes.push_back(
        "a contention recording: holders are the processes that had to wait "
        "for a lock; uncontended acquisitions are not seen");
  }
}

}  // namespace

Report build_report(const model::HolderModel& model, const perf::PerfDataReader& reader, const Filters& filters,
                    Namer& namer) {
  Report report;
  report.namer = &namer;
  report.stacks = &model.stacks();
  report.filters = filters;
  fill_header(report.header, model, reader);
  const auto pairs_of_lock = held_pairs_by_lock(model, filters);
  for (const auto& members : lock_identities(model, pairs_of_lock, filters, report)) {
    std::vector<const model::HolderLock*> pairs;
    for (size_t index : members) pairs.insert(pairs.end(), pairs_of_lock[index].begin(), pairs_of_lock[index].end());
    if (std::optional<LockEntry> entry = lock_entry(model, members, std::move(pairs), report)) {
      report.locks.push_back(std::move(*entry));
    }
  }
  std::sort(report.locks.begin(), report.locks.end(), [](const LockEntry& a, const LockEntry& b) {
    if (a.holders.size() != b.holders.size()) return a.holders.size() > b.holders.size();
    if (a.acquisitions != b.acquisitions) return a.acquisitions > b.acquisitions;
    return a.lock->address < b.lock->address;
  });

  add_holder_pairs(report);
  add_groups(report);
  add_warnings(report.header, model, reader);
  return report;
}

}  // namespace lockscope::report
