// The sharing report: which holders take the same locks. Built from the holder model after the
// read: filters, names (through the symbolizer), the bipartite holder–lock graph and its analyses
// (Boost.Graph), ready for an output format. Internal to analyzer/.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "contention_stats.hpp"
#include "hex_number.hpp"
#include "holder_model.hpp"
#include "lockdep.hpp"
#include "lockrec_side_file.hpp"
#include "lockscope/perf_data.hpp"
#include "lockscope/symbolizer.hpp"

namespace lockscope::report {

// What makes two acquisitions the same lock: its address, or for dynamic (unnamed) locks the
// class their first stack gives them (all rq locks as one `raw_spin_rq_lock_nested`).
enum class LockIdentity { address, lock_class };

struct Filters {
  LockIdentity identity = LockIdentity::address;
  std::vector<int64_t> pids;
  std::vector<std::string> comms;
  std::vector<std::string> locks;  // names or 0x addresses
  size_t min_holders = 2;
  bool exclude_idle = false;
  std::optional<bool> kernel_threads;  // nullopt: both
};

struct Frame {
  uint64_t address = 0;
  std::string function;  // "alloc_ucounts"; empty when nothing names the address
  std::string symbol;    // "alloc_ucounts+0x35", or "0x…" when nothing names it
  std::vector<symbolizer::InlineFrame> inlines;
  std::string file;
  int line = 0;
};

struct HolderEntry {
  const model::Holder* holder = nullptr;
  const model::HolderLock* pair = nullptr;  // pair->stacks: interned stack ids, the first first
  std::vector<std::string> interrupted;     // labels of interrupted tasks (pseudo-holders)
};

// Where a lock lives, from the kernel's layout, never from whether a symbol names it: in the kernel
// image (static), in a CPU's per-cpu area, in a module, in memory allocated at run time (dynamic:
// heap, vmalloc, per-cpu chunks), or unknown where neither the symbols nor the architecture's
// layout say.
enum class Storage { static_image, percpu, module, dynamic, unknown };
std::string_view name_of(Storage storage);  // "static", "per-cpu", "module", "dynamic", "unknown"

struct LockEntry {
  const model::Lock* lock = nullptr;
  Storage storage = Storage::unknown;
  std::string name;         // gdb expression for static locks; empty for dynamic ones
  std::string lock_class;   // dynamic locks: the first caller outside the lock functions
  std::string why_unnamed;  // a lock in the kernel image or a module that the symbols cannot name
  std::string symbol;
  uint64_t offset = 0;
  std::string section;
  std::string type;  // C type from DWARF
  bool percpu = false;
  std::string kind;  // access names joined: "spinlock", "rwlock-read,rwlock-write"
  uint64_t acquisitions = 0;
  size_t instances = 1;              // lock addresses merged into this entry (LockIdentity::lock_class)
  std::vector<HolderEntry> holders;  // by acquisitions, most first
  std::string display_name() const;  // name, or "<class> (dynamic)", or the address
};

// Locks held by more holders than this are left out of the pairs (their count is quadratic).
inline constexpr size_t kMaxHoldersForPairs = 256;

struct HolderPair {
  const model::Holder* first = nullptr;
  const model::Holder* second = nullptr;
  std::vector<size_t> shared_locks;  // indexes into Report::locks
};

struct Group {
  std::vector<const model::Holder*> holders;
  std::vector<size_t> locks;  // indexes into Report::locks
};

struct Header {
  std::string recording;
  std::string kernel;
  std::string hostname;
  std::string perf_version;
  std::string vmlinux;
  std::string symbol_source;  // "vmlinux (DWARF)", "kallsyms FILE", "none"
  uint32_t nr_cpus = 0;
  double duration_s = 0;
  uint64_t lock_events = 0;
  uint64_t acquisitions = 0;
  uint64_t lost_events = 0;   // the sum of PERF_RECORD_LOST records
  uint64_t lost_samples = 0;  // the sum of PERF_RECORD_LOST_SAMPLES records
  // How many events were lost. perf record writes both kinds for the same loss (LOST from the
  // kernel's ring buffer, LOST_SAMPLES from each event's read_format LOST count at the end), so
  // the larger is the loss; their sum counted it twice.
  // The loss as perf report's "Total Lost Samples" counts it: perf record writes both kinds for
  // one loss, but their counts are read at different times and may differ by a few (782 LOST
  // against 776 LOST_SAMPLES in one CI run). A perf without LOST_SAMPLES has only the other.
  uint64_t lost() const { return lost_samples > 0 ? lost_samples : lost_events; }
  uint64_t holders = 0;
  uint64_t locks = 0;
  bool contention_recording = false;
  std::optional<LockrecSideFile> lockrec;  // lockrec's FILE.lockrec.json, when one lay beside FILE
  std::vector<std::string> notes;          // one line each: what the reader should know
  std::vector<std::string> warnings;       // also among the notes; said on stderr too
};

// Names a lock address and code addresses; caches by address. Without a symbolizer it names
// nothing and says so. Stacks are named only when an output asks for them.
class Namer {
 public:
  // `modules` (optional) names what `symbolizer` cannot outside the kernel image: module code and
  // data from a kallsyms taken while they were loaded. `arch` (the recording's, "x86_64") gives the
  // address layout for what the symbols alone cannot place (a kallsyms without `_end`).
  explicit Namer(symbolizer::Symbolizer* symbolizer, symbolizer::Symbolizer* modules = nullptr, std::string arch = "");
  // Whether the address lies in the kernel image (_text to _end, or the architecture's kernel
  // image mapping): a static object even when no symbol names it, so it gets no dynamic-lock class.
  bool in_kernel_image(uint64_t address) const;
  // Where the object at `address` lives (see Storage).
  Storage storage_of(uint64_t address);
  const symbolizer::DataName& data(uint64_t address);
  // A frame of a call stack: `is_return_address` frames (all but the first) are looked up at the
  // call instruction (address - 1) for their line and inlines, as addr2line and gdb do, and named
  // symbol+offset of the address itself, as perf does.
  const Frame& code(uint64_t address, bool is_return_address);
  std::vector<const Frame*> stack(std::span<const uint64_t> frames);

 private:
  symbolizer::Symbolizer* symbolizer_;
  symbolizer::Symbolizer* modules_;
  std::optional<uint64_t> image_start_, image_end_;
  std::string arch_;
  std::unordered_map<uint64_t, symbolizer::DataName> data_;
  std::unordered_map<uint64_t, Frame> code_;  // key: address, low bit of a spare: see code()
};

struct Report {
  std::deque<model::HolderLock> merged_pairs;  // pairs summed over a class's locks
  Namer* namer = nullptr;
  const model::StackTable* stacks = nullptr;
  std::vector<const Frame*> stack(uint32_t id) const { return namer->stack(stacks->frames(id)); }
  Header header;
  Filters filters;
  std::vector<LockEntry> locks;   // shared by >= min_holders, most holders first
  std::vector<HolderPair> pairs;  // most shared locks first
  std::vector<Group> groups;      // largest first
  // lockdep's rules applied to the recording: irq-safety and lock-order findings, shown first.
  std::vector<lockdep::Finding> findings;
  // Contention recordings: the wait table `perf lock contention -i` prints, row for row.
  std::vector<contention::ContentionRow> contention;
};

// The class of a dynamic lock from one of its stacks, or "" for a static lock or no class.
std::string dynamic_lock_class(Namer& namer, uint64_t address, std::span<const uint64_t> stack);

Report build_report(const model::HolderModel& model, const perf::PerfDataReader& reader, const Filters& filters,
                    Namer& namer);

}  // namespace lockscope::report
