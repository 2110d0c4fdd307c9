// Reader of perf.data, file mode (mmapped) and pipe mode (a stream). It knows the perf record ABI
// (<linux/perf_event.h>) and nothing about locks: it hands decoded records to a RecordVisitor as
// views into its own buffers, valid only during the callback. Every count and length from the file
// is checked against the bytes that remain before it is used; problems throw lockscope::Error with
// the file offset.
#pragma once

#include <linux/perf_event.h>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lockscope::perf {

using Bytes = std::span<const std::byte>;

// Reads a little-endian (host order) value from possibly unaligned bytes. The caller has checked
// the bounds; payload fields in perf.data are not guaranteed to be aligned.
template <typename T>
T load(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

// One event of the recording: its attr, name and ids.
struct EventDesc {
  perf_event_attr attr{};  // zero-extended or truncated to the size this build knows
  uint32_t attr_size_in_file = 0;
  std::string name;  // "probe:_raw_spin_lock", "lock:contention_begin"; from EVENT_DESC
  std::vector<uint64_t> ids;
  size_t index = 0;  // position in Metadata::events
};

struct BuildIdEntry {
  int32_t pid = 0;
  uint16_t misc = 0;
  std::string build_id_hex;  // lowercase hex, as `perf buildid-list` prints it
  std::string filename;      // "[kernel.kallsyms]", "/lib/modules/..."
};

// Header-level facts of the recording. In file mode they are all known before the first record;
// in pipe mode they fill in as metadata records arrive (perf sends them before the first sample).
struct Metadata {
  bool pipe_mode = false;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;
  bool data_size_was_zero = false;  // perf was killed before it rewrote the header
  bool data_cut_short = false;      // the file ends inside the data section the header declares
  std::vector<EventDesc> events;
  std::string hostname;
  std::string os_release;
  std::string perf_version;
  std::string arch;
  std::vector<std::string> cmdline;
  uint32_t nr_cpus_online = 0;
  uint32_t nr_cpus_available = 0;
  std::vector<BuildIdEntry> build_ids;
  std::vector<std::byte> tracing_data;  // the raw TRACING_DATA blob, parsed by TraceFormats
  uint64_t tracing_data_offset = 0;     // where that blob starts in the file (for errors)
  std::vector<uint64_t> features;       // feature ids present
};

// A callchain as recorded: addresses and PERF_CONTEXT_* markers, read without alignment assumptions.
class Callchain {
 public:
  Callchain() = default;
  Callchain(const std::byte* first, uint64_t count) : first_(first), count_(count) {}
  uint64_t size() const { return count_; }
  uint64_t operator[](uint64_t i) const { return load<uint64_t>(first_ + i * 8); }
  bool empty() const { return count_ == 0; }

 private:
  const std::byte* first_ = nullptr;
  uint64_t count_ = 0;
};

inline bool is_context_marker(uint64_t value) { return value >= static_cast<uint64_t>(-4095); }

// Which part of the machine a callchain address belongs to, from the PERF_CONTEXT_* marker that
// precedes it (kernel frames come first, then user frames).
enum class FrameContext : uint8_t { unknown, kernel, user, hypervisor, guest_kernel, guest_user };

inline FrameContext frame_context_of_marker(uint64_t marker) {
  switch (marker) {
    case static_cast<uint64_t>(PERF_CONTEXT_KERNEL): return FrameContext::kernel;
    case static_cast<uint64_t>(PERF_CONTEXT_USER): return FrameContext::user;
    case static_cast<uint64_t>(PERF_CONTEXT_HV): return FrameContext::hypervisor;
    case static_cast<uint64_t>(PERF_CONTEXT_GUEST_KERNEL): return FrameContext::guest_kernel;
    case static_cast<uint64_t>(PERF_CONTEXT_GUEST_USER): return FrameContext::guest_user;
    default: return FrameContext::unknown;
  }
}

// Calls visit(address, context) for every address of the chain, innermost first; the markers
// themselves are not visited.
template <typename Visit>
void for_each_frame(const Callchain& chain, Visit&& visit) {
  FrameContext context = FrameContext::unknown;
  for (uint64_t i = 0; i < chain.size(); ++i) {
    uint64_t value = chain[i];
    if (is_context_marker(value)) {
      context = frame_context_of_marker(value);
    } else {
      visit(value, context);
    }
  }
}

struct Sample {
  const EventDesc* event = nullptr;
  uint64_t file_offset = 0;  // of the record (in a compressed stream: of its COMPRESSED record)
  uint16_t misc = 0;
  uint64_t ip = 0;
  uint32_t pid = 0, tid = 0;
  uint64_t time = 0;
  uint64_t addr = 0;
  uint64_t id = 0;
  uint64_t stream_id = 0;
  uint32_t cpu = 0;
  uint64_t period = 0;
  Callchain callchain;
  Bytes raw;  // tracepoint / kprobe payload
};

// The sample_id_all trailer of a non-sample record (fields zero when absent).
struct SampleId {
  uint32_t pid = 0, tid = 0;
  uint64_t time = 0;
  uint64_t id = 0;
  uint32_t cpu = 0;
  bool present = false;
};

struct CommRecord {
  uint32_t pid, tid;
  std::string_view comm;
  bool exec;  // PERF_RECORD_MISC_COMM_EXEC: the comm changed because of exec
  SampleId sample_id;
};

struct TaskRecord {  // FORK and EXIT
  uint32_t pid, ppid, tid, ptid;
  uint64_t time;
  SampleId sample_id;
};

struct MmapRecord {  // MMAP and MMAP2
  uint32_t pid, tid;
  uint64_t start, len, pgoff;
  std::string_view filename;
  bool kernel;  // misc says kernel
  SampleId sample_id;
};

struct LostRecord {
  uint64_t id, lost;
  SampleId sample_id;
};

struct ThrottleRecord {
  bool throttle;  // false: UNTHROTTLE
  uint64_t time, id, stream_id;
};

class RecordVisitor {
 public:
  virtual ~RecordVisitor() = default;
  virtual void on_sample(const Sample&) {}
  virtual void on_comm(const CommRecord&) {}
  virtual void on_fork(const TaskRecord&) {}
  virtual void on_exit(const TaskRecord&) {}
  virtual void on_mmap(const MmapRecord&) {}
  virtual void on_lost(const LostRecord&) {}
  virtual void on_lost_samples(uint64_t /*lost*/, const SampleId&) {}
  virtual void on_throttle(const ThrottleRecord&) {}
  // Pipe mode: metadata (attrs, tracing data, features) is complete. File mode: called once before
  // the first record.
  virtual void on_metadata(const Metadata&) {}
  // Checked after each record: a visitor that has what it needs stops the read early.
  virtual bool wants_more() const { return true; }
};

// File order is the order records were written: per-CPU buffers one after another. Time order is
// what `perf script` shows: records are held back until a FINISHED_ROUND proves that nothing older
// can still come (perf's own rule), then sorted by time. Memory stays bounded by two rounds.
enum class RecordOrder { file, time };

// Counts of what was read, for the summary line and for tests.
struct ReadStats {
  std::map<std::string, uint64_t> records_by_type;  // "SAMPLE", "COMM", "COMPRESSED", ...
  uint64_t samples = 0;
  uint64_t unknown_records_skipped = 0;
  uint64_t samples_without_event = 0;  // id matched no attr
  uint64_t lost_events = 0;            // sum of LOST records' counts
  uint64_t lost_samples = 0;           // sum of LOST_SAMPLES
  uint64_t compressed_bytes_in = 0, compressed_bytes_out = 0;
  uint64_t out_of_order_records = 0;  // time order: records older than what was already flushed
  std::vector<std::string> warnings;  // printed by the command line
  // Where the file is damaged (cut short, perf killed mid-write) and what was read around it. Also
  // printed as warnings; `--strict` turns any of them into a failure (exit 4).
  std::vector<std::string> damage;
};

class PerfDataReader {
 public:
  // path "-" reads standard input (pipe mode). Throws Error if the file cannot be opened or its
  // header is bad. File mode reads the header, attrs and feature sections here.
  // `display_name`, when given, names the file in messages (a spooled pipe: "<stdin>").
  static std::unique_ptr<PerfDataReader> open(const std::string& path, const std::string& display_name = "");
  // Pipe mode from an open descriptor (a pipe or socket); `name` is used in messages.
  static std::unique_ptr<PerfDataReader> open_stream(int fd, const std::string& name);
  virtual ~PerfDataReader() = default;

  // Reads all records, in file order, calling the visitor. Throws Error on malformed input.
  virtual void read(RecordVisitor& visitor, RecordOrder order = RecordOrder::file) = 0;

  // In pipe mode parts of the metadata are only known once read() has reached them.
  virtual const Metadata& metadata() const = 0;
  virtual const ReadStats& stats() const = 0;
  virtual const std::string& path() const = 0;
};

// Names of record types as perf prints them ("SAMPLE", "MMAP2", "HEADER_ATTR").
std::string_view record_type_name(uint32_t type);

}  // namespace lockscope::perf

namespace lockscope::perf {

// What the recording says about the kernel image: where `_text` was at run time (the pgoff of the
// `[kernel.kallsyms]_text` map; KASLR shows here) and the build-id perf saw. The symbolizer's
// relocation is text_address minus the vmlinux's `_text`.
struct KernelImageInfo {
  bool has_text_address = false;
  uint64_t text_address = 0;
  std::string build_id_hex;  // empty when the recording has no BUILD_ID entry for the kernel
  std::string os_release;
};

// Reads the recording's metadata and its records up to the kernel map (perf writes it first).
KernelImageInfo read_kernel_image_info(const std::string& path, const std::string& display_name = "");

// The runtime `_text` a record shows when it is the kernel's map (`[kernel.kallsyms]_text`, whose
// pgoff is `_text`); nothing for any other map, or a kernel map without it.
std::optional<uint64_t> kernel_text_of_map(const MmapRecord& map);

// What the metadata says of the kernel (release, BUILD_ID entry) with the `_text` found in its
// records: for a pipe, which is read once, after the read.
KernelImageInfo kernel_image_info(const Metadata& metadata, std::optional<uint64_t> runtime_text);

}  // namespace lockscope::perf
