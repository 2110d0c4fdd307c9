#include "perf_data_builder.hpp"

#include <unistd.h>
#include <zstd.h>
#include <array>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace lockscope::testing {
namespace {

constexpr uint64_t kMagic = 0x32454c4946524550ull;
constexpr uint32_t kHeaderAttr = 64, kHeaderTracingData = 66, kFinishedRound = 68;
constexpr uint32_t kHeaderFeature = 80, kCompressed = 81, kFinishedInit = 82;
constexpr uint64_t kFeatTracingData = 1, kFeatBuildId = 2, kFeatHostname = 3, kFeatOsRelease = 4;
constexpr uint64_t kFeatEventDesc = 12;

std::string common_fields() {
  return "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
         "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
         "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
         "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n";
}

ByteVector event_header(uint32_t type, uint16_t misc, size_t body_size) {
  ByteWriter out;
  perf_event_header header{type, misc, static_cast<uint16_t>(sizeof(perf_event_header) + body_size)};
  out.put(header);
  return out.bytes;
}

}  // namespace

std::string kprobe_format(std::string_view name, int id, const std::vector<std::string>& fields) {
  std::string text = "name: " + std::string(name) + "\nID: " + std::to_string(id) + "\nformat:\n" + common_fields();
  int offset = 8;
  std::string print_args;
  for (const auto& field : fields) {
    text += "\tfield:u64 " + field + ";\toffset:" + std::to_string(offset) + ";\tsize:8;\tsigned:0;\n";
    offset += 8;
    print_args += ", REC->" + field;
  }
  text += "\nprint fmt: \"";
  for (const auto& field : fields) text += field + "=0x%Lx ";
  text += "\"" + print_args + "\n";
  return text;
}

std::string contention_begin_format(int id) {
  return "name: contention_begin\nID: " + std::to_string(id) + "\nformat:\n" + common_fields() +
         "\tfield:void * lock_addr;\toffset:8;\tsize:8;\tsigned:0;\n"
         "\tfield:unsigned int flags;\toffset:16;\tsize:4;\tsigned:0;\n\n"
         "print fmt: \"%p (flags=%x)\", REC->lock_addr, REC->flags\n";
}

std::string contention_end_format(int id) {
  return "name: contention_end\nID: " + std::to_string(id) + "\nformat:\n" + common_fields() +
         "\tfield:void * lock_addr;\toffset:8;\tsize:8;\tsigned:0;\n"
         "\tfield:int ret;\toffset:16;\tsize:4;\tsigned:1;\n\n"
         "print fmt: \"%p (ret=%d)\", REC->lock_addr, REC->ret\n";
}

ByteVector tracing_data(const std::vector<TraceSystem>& systems) {
  ByteWriter out;
  out.put_text(std::string_view("\x17\x08\x44tracing", 10));
  out.put_cstring("0.6");
  out.put<uint8_t>(0);  // little-endian
  out.put<uint8_t>(8);  // long size
  out.put<uint32_t>(4096);
  const std::string header_page =
      "\tfield: u64 timestamp;\toffset:0;\tsize:8;\tsigned:0;\n"
      "\tfield: local_t commit;\toffset:8;\tsize:8;\tsigned:1;\n"
      "\tfield: int overwrite;\toffset:8;\tsize:1;\tsigned:1;\n"
      "\tfield: char data;\toffset:16;\tsize:4080;\tsigned:1;\n";
  out.put_cstring("header_page");
  out.put<uint64_t>(header_page.size());
  out.put_text(header_page);
  const std::string header_event = "# compressed entry header\n\ttype_len    :    5 bits\n";
  out.put_cstring("header_event");
  out.put<uint64_t>(header_event.size());
  out.put_text(header_event);
  out.put<uint32_t>(0);  // no ftrace formats
  out.put<uint32_t>(static_cast<uint32_t>(systems.size()));
  for (const auto& system : systems) {
    out.put_cstring(system.name);
    out.put<uint32_t>(static_cast<uint32_t>(system.formats.size()));
    for (const auto& format : system.formats) {
      out.put<uint64_t>(format.size());
      out.put_text(format);
    }
  }
  out.put<uint32_t>(0);  // kallsyms
  out.put<uint32_t>(0);  // printk formats
  out.put<uint64_t>(0);  // saved cmdlines
  return out.bytes;
}

ByteVector trace_payload(uint16_t type_id, uint8_t flags, uint8_t preempt_count, int32_t pid,
                         const std::vector<uint64_t>& values) {
  ByteWriter out;
  out.put(type_id);
  out.put(flags);
  out.put(preempt_count);
  out.put(pid);
  for (uint64_t value : values) out.put(value);
  return out.bytes;
}

perf_event_attr tracepoint_attr(uint64_t config, uint64_t sample_type) {
  perf_event_attr attr{};
  attr.type = PERF_TYPE_TRACEPOINT;
  attr.size = sizeof attr;
  attr.config = config;
  attr.sample_period = 1;
  attr.sample_type = sample_type;
  attr.sample_id_all = 1;
  return attr;
}

size_t PerfDataBuilder::add_event(const perf_event_attr& attr, std::string name, std::vector<uint64_t> ids) {
  events_.push_back(Event{attr, std::move(name), std::move(ids)});
  return events_.size() - 1;
}

void PerfDataBuilder::add_kernel_build_id(std::string_view hex20) { kernel_build_ids_.emplace_back(hex20); }

ByteVector PerfDataBuilder::trailer_bytes(const TrailerFields& trailer) const {
  ByteWriter out;
  if (events_.empty() || !events_.front().attr.sample_id_all) return out.bytes;
  const perf_event_attr& attr = events_.front().attr;
  uint64_t type = attr.sample_type;
  uint64_t id = events_.front().ids.empty() ? 0 : events_.front().ids.front();
  if (type & PERF_SAMPLE_TID) {
    out.put(trailer.pid);
    out.put(trailer.tid);
  }
  if (type & PERF_SAMPLE_TIME) out.put(trailer.time);
  if (type & PERF_SAMPLE_ID) out.put(id);
  if (type & PERF_SAMPLE_STREAM_ID) out.put<uint64_t>(0);
  if (type & PERF_SAMPLE_CPU) {
    out.put(trailer.cpu);
    out.put<uint32_t>(0);
  }
  if (type & PERF_SAMPLE_IDENTIFIER) out.put(id);
  return out.bytes;
}

void PerfDataBuilder::record(uint32_t type, uint16_t misc, const ByteVector& body, const TrailerFields* trailer) {
  ByteVector all = body;
  if (trailer != nullptr) {
    ByteVector extra = trailer_bytes(*trailer);
    all.insert(all.end(), extra.begin(), extra.end());
  }
  ByteVector header = event_header(type, misc, all.size());
  data_.insert(data_.end(), header.begin(), header.end());
  data_.insert(data_.end(), all.begin(), all.end());
}

void PerfDataBuilder::sample(size_t event_index, const SampleFields& f) {
  const Event& event = events_.at(event_index);
  uint64_t type = event.attr.sample_type;
  uint64_t id = event.ids.empty() ? 0 : event.ids.front();
  ByteWriter out;
  if (type & PERF_SAMPLE_IDENTIFIER) out.put(id);
  if (type & PERF_SAMPLE_IP) out.put(f.ip);
  if (type & PERF_SAMPLE_TID) {
    out.put(f.pid);
    out.put(f.tid);
  }
  if (type & PERF_SAMPLE_TIME) out.put(f.time);
  if (type & PERF_SAMPLE_ADDR) out.put(f.addr);
  if (type & PERF_SAMPLE_ID) out.put(id);
  if (type & PERF_SAMPLE_STREAM_ID) out.put(f.stream_id);
  if (type & PERF_SAMPLE_CPU) {
    out.put(f.cpu);
    out.put<uint32_t>(0);
  }
  if (type & PERF_SAMPLE_PERIOD) out.put(f.period);
  if (type & PERF_SAMPLE_READ) {
    for (uint64_t value : f.read_values) out.put(value);
  }
  if (type & PERF_SAMPLE_CALLCHAIN) {
    out.put<uint64_t>(f.callchain.size());
    for (uint64_t ip : f.callchain) out.put(ip);
  }
  if (type & PERF_SAMPLE_RAW) {
    // The kernel pads u32 size + data to a multiple of 8 and counts the padding in size.
    uint32_t padded = static_cast<uint32_t>((f.raw.size() + 4 + 7) / 8 * 8 - 4);
    out.put(padded);
    out.put_bytes(f.raw);
    for (size_t i = f.raw.size(); i < padded; ++i) out.put<char>('\0');
  }
  if (type & PERF_SAMPLE_BRANCH_STACK) {
    out.put<uint64_t>(f.branch_entries.size() / 3);
    if (event.attr.branch_sample_type & PERF_SAMPLE_BRANCH_HW_INDEX) out.put<uint64_t>(0);
    for (uint64_t value : f.branch_entries) out.put(value);
  }
  if (type & PERF_SAMPLE_REGS_USER) {
    for (uint64_t value : f.regs_user) out.put(value);
    if (f.regs_user.empty()) out.put<uint64_t>(0);
  }
  if (type & PERF_SAMPLE_STACK_USER) {
    out.put<uint64_t>(f.stack_user.size());
    out.put_bytes(f.stack_user);
    if (!f.stack_user.empty()) out.put<uint64_t>(f.stack_user.size());
  }
  if (type & (PERF_SAMPLE_WEIGHT | PERF_SAMPLE_WEIGHT_STRUCT)) out.put(f.weight);
  if (type & PERF_SAMPLE_DATA_SRC) out.put(f.data_src);
  if (type & PERF_SAMPLE_TRANSACTION) out.put(f.transaction);
  if (type & PERF_SAMPLE_REGS_INTR) {
    for (uint64_t value : f.regs_intr) out.put(value);
    if (f.regs_intr.empty()) out.put<uint64_t>(0);
  }
  if (type & PERF_SAMPLE_PHYS_ADDR) out.put(f.phys_addr);
  if (type & PERF_SAMPLE_CGROUP) out.put(f.cgroup);
  if (type & PERF_SAMPLE_DATA_PAGE_SIZE) out.put(f.data_page_size);
  if (type & PERF_SAMPLE_CODE_PAGE_SIZE) out.put(f.code_page_size);
  if (type & PERF_SAMPLE_AUX) {
    out.put<uint64_t>(f.aux.size());
    out.put_bytes(f.aux);
  }
  record(PERF_RECORD_SAMPLE, PERF_RECORD_MISC_KERNEL, out.bytes, nullptr);
}

void PerfDataBuilder::comm(uint32_t pid, uint32_t tid, std::string_view comm, bool exec, TrailerFields trailer) {
  ByteWriter out;
  out.put(pid);
  out.put(tid);
  out.put_cstring(comm);
  out.pad_to(8);
  record(PERF_RECORD_COMM, exec ? PERF_RECORD_MISC_COMM_EXEC : 0, out.bytes, &trailer);
}

void PerfDataBuilder::fork(uint32_t pid, uint32_t ppid, uint32_t tid, uint32_t ptid, TrailerFields trailer) {
  ByteWriter out;
  for (uint32_t value : {pid, ppid, tid, ptid}) out.put(value);
  out.put(trailer.time);
  record(PERF_RECORD_FORK, 0, out.bytes, &trailer);
}

void PerfDataBuilder::exit(uint32_t pid, uint32_t ppid, uint32_t tid, uint32_t ptid, TrailerFields trailer) {
  ByteWriter out;
  for (uint32_t value : {pid, ppid, tid, ptid}) out.put(value);
  out.put(trailer.time);
  record(PERF_RECORD_EXIT, 0, out.bytes, &trailer);
}

void PerfDataBuilder::kernel_mmap(uint64_t start, uint64_t len, uint64_t pgoff, TrailerFields trailer) {
  ByteWriter out;
  out.put<uint32_t>(UINT32_MAX);  // pid -1: the kernel
  out.put<uint32_t>(0);
  out.put(start);
  out.put(len);
  out.put(pgoff);
  out.put_cstring("[kernel.kallsyms]_text");
  out.pad_to(8);
  record(PERF_RECORD_MMAP, PERF_RECORD_MISC_KERNEL, out.bytes, &trailer);
}

void PerfDataBuilder::lost(uint64_t id, uint64_t count, TrailerFields trailer) {
  ByteWriter out;
  out.put(id);
  out.put(count);
  record(PERF_RECORD_LOST, 0, out.bytes, &trailer);
}

void PerfDataBuilder::lost_samples(uint64_t count, TrailerFields trailer) {
  ByteWriter out;
  out.put(count);
  record(PERF_RECORD_LOST_SAMPLES, 0, out.bytes, &trailer);
}

void PerfDataBuilder::finished_round() { record(kFinishedRound, 0, {}, nullptr); }

void PerfDataBuilder::raw_record(uint32_t type, uint16_t misc, const ByteVector& body) {
  record(type, misc, body, nullptr);
}

ByteVector PerfDataBuilder::build_id_section() const {
  ByteWriter out;
  for (const auto& hex : kernel_build_ids_) {
    ByteWriter entry;
    entry.put<int32_t>(-1);
    uint8_t id[24] = {};
    for (size_t i = 0; i < 20 && i * 2 + 1 < hex.size(); ++i) {
      id[i] = static_cast<uint8_t>(std::stoul(hex.substr(i * 2, 2), nullptr, 16));
    }
    id[20] = 20;
    entry.put_bytes(id, sizeof id);
    entry.put_cstring("[kernel.kallsyms]");
    entry.pad_to(8);
    // misc bit 15: the size byte is valid; cpumode kernel.
    out.put(perf_event_header{0, static_cast<uint16_t>((1u << 15) | PERF_RECORD_MISC_KERNEL),
                              static_cast<uint16_t>(8 + entry.bytes.size())});
    out.put_bytes(entry.bytes);
  }
  return out.bytes;
}

ByteVector PerfDataBuilder::compress(const ByteVector& records, size_t chunk) const {
  ZSTD_CCtx* context = ZSTD_createCCtx();
  ByteWriter out;
  std::vector<std::byte> buffer(ZSTD_CStreamOutSize() * 4);
  for (size_t start = 0; start < records.size(); start += chunk) {
    size_t size = std::min(chunk, records.size() - start);
    ZSTD_inBuffer input{records.data() + start, size, 0};
    ByteVector payload;
    // Like perf: flush, do not end the frame, so all payloads form one stream.
    size_t remaining;
    do {
      ZSTD_outBuffer output{buffer.data(), buffer.size(), 0};
      remaining = ZSTD_compressStream2(context, &output, &input, ZSTD_e_flush);
      if (ZSTD_isError(remaining)) throw std::runtime_error("zstd compression failed");
      payload.insert(payload.end(), buffer.begin(), buffer.begin() + static_cast<long>(output.pos));
    } while (remaining != 0 || input.pos < input.size);
    if (payload.size() + 8 > 0xffff) throw std::runtime_error("compressed chunk too large");
    out.put(perf_event_header{kCompressed, 0, static_cast<uint16_t>(8 + payload.size())});
    out.put_bytes(payload);
  }
  ZSTD_freeCCtx(context);
  return out.bytes;
}

ByteVector PerfDataBuilder::file_mode(bool compressed, size_t chunk) const {
  ByteVector data = compressed ? compress(data_, chunk) : data_;
  constexpr uint64_t kHeaderSize = 104;
  const uint64_t attr_entry = sizeof(perf_event_attr) + 16;

  // Layout: header | ids of every event | attrs | data | feature table | features.
  ByteWriter ids;
  std::vector<uint64_t> ids_offsets;
  for (const auto& event : events_) {
    ids_offsets.push_back(kHeaderSize + ids.bytes.size());
    for (uint64_t id : event.ids) ids.put(id);
  }
  uint64_t attrs_offset = kHeaderSize + ids.bytes.size();
  ByteWriter attrs;
  for (size_t i = 0; i < events_.size(); ++i) {
    attrs.put(events_[i].attr);
    attrs.put<uint64_t>(ids_offsets[i]);
    attrs.put<uint64_t>(events_[i].ids.size() * 8);
  }
  uint64_t data_offset = attrs_offset + attrs.bytes.size();

  std::vector<std::pair<uint64_t, ByteVector>> features;
  if (!tracing_data_.empty()) features.emplace_back(kFeatTracingData, tracing_data_);
  if (!kernel_build_ids_.empty()) features.emplace_back(kFeatBuildId, build_id_section());
  ByteWriter hostname;
  hostname.put_perf_string(hostname_);
  features.emplace_back(kFeatHostname, hostname.bytes);
  ByteWriter release;
  release.put_perf_string(os_release_);
  features.emplace_back(kFeatOsRelease, release.bytes);
  ByteWriter desc;
  desc.put<uint32_t>(static_cast<uint32_t>(events_.size()));
  desc.put<uint32_t>(sizeof(perf_event_attr));
  for (const auto& event : events_) {
    desc.put(event.attr);
    desc.put<uint32_t>(static_cast<uint32_t>(event.ids.size()));
    desc.put_perf_string(event.name);
    for (uint64_t id : event.ids) desc.put(id);
  }
  features.emplace_back(kFeatEventDesc, desc.bytes);

  uint64_t table_offset = data_offset + data.size();
  uint64_t next = table_offset + features.size() * 16;
  ByteWriter table, bodies;
  std::array<uint64_t, 4> bits{};
  for (const auto& [id, body] : features) {
    bits[id / 64] |= 1ull << (id % 64);
    table.put<uint64_t>(next + bodies.bytes.size());
    table.put<uint64_t>(body.size());
    bodies.put_bytes(body);
  }

  ByteWriter out;
  out.put(kMagic);
  out.put(kHeaderSize);
  out.put(attr_entry);
  out.put(attrs_offset);
  out.put<uint64_t>(attrs.bytes.size());
  out.put(data_offset);
  out.put<uint64_t>(data.size());
  out.put<uint64_t>(0);
  out.put<uint64_t>(0);
  for (uint64_t word : bits) out.put(word);
  out.put_bytes(ids.bytes);
  out.put_bytes(attrs.bytes);
  out.put_bytes(data);
  out.put_bytes(table.bytes);
  out.put_bytes(bodies.bytes);
  return out.bytes;
}

ByteVector PerfDataBuilder::pipe_mode(bool compressed, size_t chunk) const {
  ByteWriter out;
  out.put(kMagic);
  out.put<uint64_t>(16);
  auto feature = [&](uint64_t id, const ByteVector& body) {
    out.put(perf_event_header{kHeaderFeature, 0, static_cast<uint16_t>(16 + body.size())});
    out.put(id);
    out.put_bytes(body);
  };
  ByteWriter hostname;
  hostname.put_perf_string(hostname_);
  feature(kFeatHostname, hostname.bytes);
  ByteWriter release;
  release.put_perf_string(os_release_);
  feature(kFeatOsRelease, release.bytes);
  for (const auto& event : events_) {
    out.put(
        perf_event_header{kHeaderAttr, 0, static_cast<uint16_t>(8 + sizeof(perf_event_attr) + 8 * event.ids.size())});
    out.put(event.attr);
    for (uint64_t id : event.ids) out.put(id);
  }
  if (!tracing_data_.empty()) {
    ByteVector blob = tracing_data_;
    while (blob.size() % 8 != 0) blob.push_back(std::byte{0});
    out.put(perf_event_header{kHeaderTracingData, 0, 16});
    out.put<uint32_t>(static_cast<uint32_t>(blob.size()));
    out.put<uint32_t>(0);
    out.put_bytes(blob);
  }
  out.put(perf_event_header{kFinishedInit, 0, 8});
  out.put_bytes(compressed ? compress(data_, chunk) : data_);
  return out.bytes;
}

std::string write_temp_file(const ByteVector& bytes, std::string_view suffix) {
  std::string pattern = "/tmp/lockscope-test-XXXXXX" + std::string(suffix);
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  int fd = mkstemps(name.data(), static_cast<int>(suffix.size()));
  if (fd < 0) throw std::runtime_error("mkstemps failed");
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n <= 0) throw std::runtime_error("write failed");
    written += static_cast<size_t>(n);
  }
  ::close(fd);
  static std::vector<std::string> created;
  struct Cleanup {
    ~Cleanup() {
      for (const auto& path : created) ::unlink(path.c_str());
    }
  };
  static Cleanup cleanup;
  created.emplace_back(name.data());
  return name.data();
}

}  // namespace lockscope::testing
