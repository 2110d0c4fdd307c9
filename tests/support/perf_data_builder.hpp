// Builds perf.data recordings in memory for unit tests: file mode and pipe mode, any sample_type,
// tracing data with event formats, sample_id_all trailers and zstd-compressed data. It writes the
// bytes the way the kernel and perf lay them out (include/uapi/linux/perf_event.h,
// tools/perf/Documentation/perf.data-file-format.txt), so the reader can be checked field by field.
#pragma once

#include <linux/perf_event.h>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace lockscope::testing {

using ByteVector = std::vector<std::byte>;

// The layout of a lock:contention_begin/end recording as `perf record -g` makes it, shared by the
// generators of contention-shaped recordings (tests/analyzer, tests/reader).
namespace contention_layout {
constexpr int kBeginId = 200, kEndId = 201;
constexpr uint64_t kSampleType = PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME |
                                 PERF_SAMPLE_CPU | PERF_SAMPLE_PERIOD | PERF_SAMPLE_CALLCHAIN | PERF_SAMPLE_RAW;
constexpr uint64_t kContextKernel = PERF_CONTEXT_KERNEL;
}  // namespace contention_layout

class ByteWriter {
 public:
  template <typename T>
  void put(T value) {
    const auto* p = reinterpret_cast<const std::byte*>(&value);
    bytes.insert(bytes.end(), p, p + sizeof value);
  }
  void put_bytes(const void* data, size_t size) {
    const auto* p = static_cast<const std::byte*>(data);
    bytes.insert(bytes.end(), p, p + size);
  }
  void put_bytes(const ByteVector& more) { bytes.insert(bytes.end(), more.begin(), more.end()); }
  void put_text(std::string_view text) { put_bytes(text.data(), text.size()); }
  void put_cstring(std::string_view text) {
    put_text(text);
    put<char>('\0');
  }
  // perf's string: u32 length (padded to 8 with NULs), then the text and padding.
  void put_perf_string(std::string_view text) {
    uint32_t padded = static_cast<uint32_t>((text.size() + 1 + 7) / 8 * 8);
    put<uint32_t>(padded);
    put_text(text);
    for (size_t i = text.size(); i < padded; ++i) put<char>('\0');
  }
  void pad_to(size_t alignment) {
    while (bytes.size() % alignment != 0) put<char>('\0');
  }
  ByteVector bytes;
};

// A kprobe-like event format: the common fields, then u64 fields in order.
std::string kprobe_format(std::string_view name, int id, const std::vector<std::string>& fields);
// The lock:contention_begin / _end formats as the kernel writes them.
std::string contention_begin_format(int id);
std::string contention_end_format(int id);

struct TraceSystem {
  std::string name;
  std::vector<std::string> formats;
};

// The TRACING_DATA blob (version 0.6, little-endian, 8-byte longs).
ByteVector tracing_data(const std::vector<TraceSystem>& systems);

// Payload of a tracepoint/kprobe sample: common header, then u64 values.
ByteVector trace_payload(uint16_t type_id, uint8_t flags, uint8_t preempt_count, int32_t pid,
                         const std::vector<uint64_t>& values);

struct SampleFields {
  uint64_t ip = 0;
  uint32_t pid = 0, tid = 0;
  uint64_t time = 0;
  uint64_t addr = 0;
  uint64_t stream_id = 0;
  uint32_t cpu = 0;
  uint64_t period = 1;
  std::vector<uint64_t> callchain;
  ByteVector raw;
  // READ with read_format: values written as given (the caller knows the layout it asked for).
  std::vector<uint64_t> read_values;
  std::vector<uint64_t> branch_entries;  // 3 u64 per entry
  std::vector<uint64_t> regs_user;       // abi followed by registers
  ByteVector stack_user;
  uint64_t weight = 0, data_src = 0, transaction = 0, phys_addr = 0, cgroup = 0;
  uint64_t data_page_size = 0, code_page_size = 0;
  std::vector<uint64_t> regs_intr;
  ByteVector aux;
};

struct TrailerFields {
  uint32_t pid = 0, tid = 0;
  uint64_t time = 0;
  uint32_t cpu = 0;
};

perf_event_attr tracepoint_attr(uint64_t config, uint64_t sample_type);

class PerfDataBuilder {
 public:
  size_t add_event(const perf_event_attr& attr, std::string name, std::vector<uint64_t> ids);
  void set_tracing_data(ByteVector blob) { tracing_data_ = std::move(blob); }
  void set_hostname(std::string value) { hostname_ = std::move(value); }
  void set_os_release(std::string value) { os_release_ = std::move(value); }
  void add_kernel_build_id(std::string_view hex20);

  // Records, appended to the data section in order.
  void sample(size_t event, const SampleFields& fields);
  void comm(uint32_t pid, uint32_t tid, std::string_view comm, bool exec, TrailerFields trailer);
  void fork(uint32_t pid, uint32_t ppid, uint32_t tid, uint32_t ptid, TrailerFields trailer);
  void exit(uint32_t pid, uint32_t ppid, uint32_t tid, uint32_t ptid, TrailerFields trailer);
  void kernel_mmap(uint64_t start, uint64_t len, uint64_t pgoff, TrailerFields trailer);
  void lost(uint64_t id, uint64_t count, TrailerFields trailer);
  void lost_samples(uint64_t count, TrailerFields trailer);
  void finished_round();
  void raw_record(uint32_t type, uint16_t misc, const ByteVector& body);

  // The recordings. compressed: the data records go into COMPRESSED records of one zstd stream,
  // cut every `chunk` bytes so records straddle payloads.
  ByteVector file_mode(bool compressed = false, size_t chunk = 1000) const;
  ByteVector pipe_mode(bool compressed = false, size_t chunk = 1000) const;

  const ByteVector& data() const { return data_; }

 private:
  struct Event {
    perf_event_attr attr;
    std::string name;
    std::vector<uint64_t> ids;
  };
  void record(uint32_t type, uint16_t misc, const ByteVector& body, const TrailerFields* trailer);
  ByteVector trailer_bytes(const TrailerFields& trailer) const;
  ByteVector build_id_section() const;
  ByteVector compress(const ByteVector& records, size_t chunk) const;

  std::vector<Event> events_;
  ByteVector tracing_data_;
  std::string hostname_ = "testhost";
  std::string os_release_ = "6.1.0-test";
  std::vector<std::string> kernel_build_ids_;
  ByteVector data_;
};

// Writes bytes to a fresh temporary file and returns its path (removed at exit of the test run).
std::string write_temp_file(const ByteVector& bytes, std::string_view suffix = ".perf.data");

}  // namespace lockscope::testing
