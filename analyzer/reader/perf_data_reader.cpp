// perf.data reader: header, attrs, feature sections, records (file and pipe mode), zstd streams
// and time ordering. Facts of the format: the kernel's tools/perf/Documentation/
// perf.data-file-format.txt and include/uapi/linux/perf_event.h.
#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>

#include "byte_cursor.hpp"
#include "lockscope/error.hpp"
#include "lockscope/perf_data.hpp"
#include "record_sources.hpp"
#include "time_order.hpp"

namespace lockscope::perf {
namespace {

constexpr uint64_t kMagic = 0x32454c4946524550ull;          // "PERFILE2"
constexpr uint64_t kMagicSwapped = 0x50455246494c4532ull;   // written on the other endianness
constexpr uint64_t kMagicVersion1 = 0x454c494646524550ull;  // "PERFFILE"
constexpr size_t kFileHeaderSize = 104;
constexpr size_t kPipeHeaderSize = 16;
constexpr uint32_t kAttrSizeVer0 = 64;  // PERF_ATTR_SIZE_VER0: the smallest attr perf ever wrote
constexpr uint16_t kMiscCommExec = 1u << 13;
constexpr uint16_t kMiscBuildIdSize = 1u << 15;

// Record types written by perf itself (tools/perf/util/event.h), not by the kernel.
enum UserRecordType : uint32_t {
  kHeaderAttr = 64,
  kHeaderEventType = 65,
  kHeaderTracingData = 66,
  kHeaderBuildId = 67,
  kFinishedRound = 68,
  kIdIndex = 69,
  kAuxtraceInfo = 70,
  kAuxtrace = 71,
  kAuxtraceError = 72,
  kThreadMap = 73,
  kCpuMap = 74,
  kStatConfig = 75,
  kStat = 76,
  kStatRound = 77,
  kEventUpdate = 78,
  kTimeConv = 79,
  kHeaderFeature = 80,
  kCompressed = 81,
  kFinishedInit = 82,
  kCompressed2 = 83,
};

// Feature ids (tools/perf/util/header.h), the ones this reader parses.
enum Feature : uint64_t {
  kFeatTracingData = 1,
  kFeatBuildId = 2,
  kFeatHostname = 3,
  kFeatOsRelease = 4,
  kFeatVersion = 5,
  kFeatArch = 6,
  kFeatNrCpus = 7,
  kFeatCmdline = 11,
  kFeatEventDesc = 12,
};

constexpr uint32_t kEventUpdateName = 2;

struct RecordTypeName {
  uint32_t type;
  std::string_view name;
};
constexpr std::array kRecordTypeNames = {
    RecordTypeName{PERF_RECORD_MMAP, "MMAP"},
    RecordTypeName{PERF_RECORD_LOST, "LOST"},
    RecordTypeName{PERF_RECORD_COMM, "COMM"},
    RecordTypeName{PERF_RECORD_EXIT, "EXIT"},
    RecordTypeName{PERF_RECORD_THROTTLE, "THROTTLE"},
    RecordTypeName{PERF_RECORD_UNTHROTTLE, "UNTHROTTLE"},
    RecordTypeName{PERF_RECORD_FORK, "FORK"},
    RecordTypeName{PERF_RECORD_READ, "READ"},
    RecordTypeName{PERF_RECORD_SAMPLE, "SAMPLE"},
    RecordTypeName{PERF_RECORD_MMAP2, "MMAP2"},
    RecordTypeName{PERF_RECORD_AUX, "AUX"},
    RecordTypeName{PERF_RECORD_ITRACE_START, "ITRACE_START"},
    RecordTypeName{PERF_RECORD_LOST_SAMPLES, "LOST_SAMPLES"},
    RecordTypeName{PERF_RECORD_SWITCH, "SWITCH"},
    RecordTypeName{PERF_RECORD_SWITCH_CPU_WIDE, "SWITCH_CPU_WIDE"},
    RecordTypeName{PERF_RECORD_NAMESPACES, "NAMESPACES"},
    RecordTypeName{PERF_RECORD_KSYMBOL, "KSYMBOL"},
    RecordTypeName{PERF_RECORD_BPF_EVENT, "BPF_EVENT"},
    RecordTypeName{PERF_RECORD_CGROUP, "CGROUP"},
    RecordTypeName{PERF_RECORD_TEXT_POKE, "TEXT_POKE"},
    RecordTypeName{21, "AUX_OUTPUT_HW_ID"},
    RecordTypeName{kHeaderAttr, "HEADER_ATTR"},
    RecordTypeName{kHeaderEventType, "HEADER_EVENT_TYPE"},
    RecordTypeName{kHeaderTracingData, "HEADER_TRACING_DATA"},
    RecordTypeName{kHeaderBuildId, "HEADER_BUILD_ID"},
    RecordTypeName{kFinishedRound, "FINISHED_ROUND"},
    RecordTypeName{kIdIndex, "ID_INDEX"},
    RecordTypeName{kAuxtraceInfo, "AUXTRACE_INFO"},
    RecordTypeName{kAuxtrace, "AUXTRACE"},
    RecordTypeName{kAuxtraceError, "AUXTRACE_ERROR"},
    RecordTypeName{kThreadMap, "THREAD_MAP"},
    RecordTypeName{kCpuMap, "CPU_MAP"},
    RecordTypeName{kStatConfig, "STAT_CONFIG"},
    RecordTypeName{kStat, "STAT"},
    RecordTypeName{kStatRound, "STAT_ROUND"},
    RecordTypeName{kEventUpdate, "EVENT_UPDATE"},
    RecordTypeName{kTimeConv, "TIME_CONV"},
    RecordTypeName{kHeaderFeature, "HEADER_FEATURE"},
    RecordTypeName{kCompressed, "COMPRESSED"},
    RecordTypeName{kFinishedInit, "FINISHED_INIT"},
    RecordTypeName{kCompressed2, "COMPRESSED2"},
};

// "PERF_RECORD_<NAME>" for error contexts. Cursors keep a view of their context, so these live
// for the whole program.
std::string_view record_context(uint32_t type) {
  static const std::vector<std::string> contexts = [] {
    std::vector<std::string> names(kRecordTypeNames.size() + 1);
    for (size_t i = 0; i < kRecordTypeNames.size(); ++i) {
      names[i] = "PERF_RECORD_" + std::string(kRecordTypeNames[i].name);
    }
    names.back() = "PERF_RECORD_UNKNOWN";
    return names;
  }();
  for (size_t i = 0; i < kRecordTypeNames.size(); ++i) {
    if (kRecordTypeNames[i].type == type) return contexts[i];
  }
  return contexts.back();
}

// perf_event_attr as this build knows it, filled from however many bytes the file has.
perf_event_attr attr_from_bytes(Bytes bytes) {
  perf_event_attr attr{};
  std::memcpy(&attr, bytes.data(), std::min(bytes.size(), sizeof attr));
  attr.size = static_cast<uint32_t>(sizeof attr);
  return attr;
}

SampleLayout layout_for(const perf_event_attr& attr) {
  SampleLayout layout;
  uint64_t type = attr.sample_type;
  layout.sample_type = type;
  layout.read_format = attr.read_format;
  layout.branch_sample_type = attr.branch_sample_type;
  layout.regs_user_mask = attr.sample_regs_user;
  layout.regs_intr_mask = attr.sample_regs_intr;
  layout.sample_id_all = attr.sample_id_all != 0;

  if (type & PERF_SAMPLE_IDENTIFIER) {
    layout.id_offset_in_sample = 0;
  } else if (type & PERF_SAMPLE_ID) {
    int offset = 0;
    for (uint64_t bit : {PERF_SAMPLE_IP, PERF_SAMPLE_TID, PERF_SAMPLE_TIME, PERF_SAMPLE_ADDR}) {
      if (type & bit) offset += 8;
    }
    layout.id_offset_in_sample = offset;
  }

  if (layout.sample_id_all) {
    // Trailer order: TID, TIME, ID, STREAM_ID, CPU, IDENTIFIER.
    uint32_t size = 0;
    for (uint64_t bit : {PERF_SAMPLE_TID, PERF_SAMPLE_TIME, PERF_SAMPLE_ID, PERF_SAMPLE_STREAM_ID, PERF_SAMPLE_CPU,
                         PERF_SAMPLE_IDENTIFIER}) {
      if (type & bit) size += 8;
    }
    layout.trailer_size = size;
    if (type & PERF_SAMPLE_IDENTIFIER) {
      layout.id_offset_from_end = 8;
    } else if (type & PERF_SAMPLE_ID) {
      int from_end = 8;
      if (type & PERF_SAMPLE_STREAM_ID) from_end += 8;
      if (type & PERF_SAMPLE_CPU) from_end += 8;
      layout.id_offset_from_end = from_end;
    }
  }
  return layout;
}

std::string build_id_hex(Bytes bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (std::byte b : bytes) {
    out += kDigits[static_cast<unsigned>(b) >> 4];
    out += kDigits[static_cast<unsigned>(b) & 15];
  }
  return out;
}

class Reader final : public PerfDataReader {
 public:
  explicit Reader(std::string path, std::string display_name = "")
      : path_(std::move(path)), display_name_(std::move(display_name)) {}
  ~Reader() override {
    if (data_fd_ >= 0) ::close(data_fd_);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  void open(int stream_fd = -1) {
    try {
      if (stream_fd >= 0) {
        open_stream(stream_fd);
      } else if (path_ == "-") {
        open_stream(STDIN_FILENO);
      } else {
        file_ = std::make_unique<MappedFile>(path_);
        open_file();
      }
    } catch (Error& error) {
      error.file(display_path());
      throw;
    }
  }

  void read(RecordVisitor& visitor, RecordOrder order) override {
    visitor_ = &visitor;
    order_ = order;
    try {
      if (!metadata_.pipe_mode) announce_metadata();
      if (file_) {
        read_data_section();
      } else {
        queue_.use_window(stream_.get());
        read_all(*stream_);
        warn_if_partial(*stream_);
      }
      if (decompressed_ && decompressed_->pending_bytes() > 0) {
        stats_.damage.push_back("the compressed stream ends with " + std::to_string(decompressed_->pending_bytes()) +
                                " bytes of a partial record; they were ignored");
      }
      flush_queue(UINT64_MAX);
      stats_.out_of_order_records = queue_.out_of_order();
      publish_record_counts();
      if (!metadata_announced_) announce_metadata();
    } catch (Error& error) {
      error.file(display_path());
      throw;
    }
  }

  const Metadata& metadata() const override { return metadata_; }
  const ReadStats& stats() const override { return stats_; }

  // Counting into an array keeps string work out of the per-record path.
  void publish_record_counts() {
    stats_.records_by_type.clear();
    for (uint32_t type = 0; type < kCountedTypes; ++type) {
      if (record_counts_[type] == 0) continue;
      std::string name(type == kCountedTypes - 1 ? "UNKNOWN" : record_type_name(type));
      stats_.records_by_type[name] += record_counts_[type];
    }
  }

  // The data section is read through a buffer, not the mapping (see StreamRecordSource). The
  // source lives as long as the reader: the time-order queue holds records in its buffer until the
  // final flush.
  void read_data_section() {
    if (data_fd_ >= 0) ::close(data_fd_);
    data_fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (data_fd_ < 0) {
      throw Error(std::string("cannot open the data section: ") + strerror(errno)).at(metadata_.data_offset);
    }
    if (lseek(data_fd_, static_cast<off_t>(metadata_.data_offset), SEEK_SET) < 0) {
      throw Error(std::string("cannot seek to the data section: ") + strerror(errno)).at(metadata_.data_offset);
    }
    data_section_ = std::make_unique<StreamRecordSource>(data_fd_, metadata_.data_offset, metadata_.data_size);
    StreamRecordSource& source = *data_section_;
    queue_.use_window(&source);
    read_all(source);
    // A pipe-mode stream saved to a file, or a header that says 0 (perf was killed), has no
    // trustworthy end: a cut-off last record is expected there. Elsewhere it is corruption.
    if (source.stopped_at_partial_record() && !metadata_.data_size_was_zero && !metadata_.data_cut_short &&
        !pipe_file_) {
      throw Error("a record runs past the end of the data section")
          .at(source.partial_record_offset())
          .hint("the file is corrupt or truncated");
    }
    warn_if_partial(source);
  }

  template <typename Source>
  void warn_if_partial(const Source& source) {
    if (source.stopped_at_partial_record()) {
      stats_.damage.push_back("the data ends with a partial record at offset " +
                              std::to_string(source.partial_record_offset()) +
                              " (perf was stopped mid-write); it was ignored");
    }
  }
  const std::string& path() const override { return path_; }

 private:
  std::string display_path() const {
    if (!display_name_.empty()) return display_name_;
    return path_ == "-" ? "<stdin>" : path_;
  }

  // ---- file header, attrs, features ----

  void check_magic(uint64_t magic, uint64_t offset) {
    if (magic == kMagic) return;
    if (magic == kMagicSwapped) {
      throw Error("this perf.data was written on a machine of the other byte order")
          .at(offset)
          .hint("run `perf script` on a machine of that byte order, or re-record here");
    }
    if (magic == kMagicVersion1) {
      throw Error("this is perf.data version 1 (PERFFILE), which perf stopped writing in 2010")
          .at(offset)
          .hint("re-record with a current perf");
    }
    throw Error("not a perf.data file (no PERFILE2 magic)").at(offset).hint("give the output of `perf record`");
  }

  void open_file() {
    Bytes all = file_->bytes();
    ByteCursor header(all, 0, "file header");
    header.require(8, "the magic");
    check_magic(load<uint64_t>(all.data()), 0);
    header.skip(8, "the magic");
    uint64_t header_size = header.u64();
    if (header_size == kPipeHeaderSize) {
      // A pipe-mode stream saved to a file: read it as a stream over the mapping.
      throw_if_empty_pipe_file(all);
      open_pipe_from_file();
      return;
    }
    if (header_size != kFileHeaderSize) {
      throw Error("header size " + std::to_string(header_size) + ", expected 104 (file mode) or " + "16 (pipe mode)")
          .at(8)
          .in("file header")
          .hint("the file is corrupt");
    }
    header.require(kFileHeaderSize - 16, "the file header");
    uint64_t attr_size = header.u64();
    uint64_t attrs_offset = header.u64(), attrs_size = header.u64();
    uint64_t data_offset = header.u64(), data_size = header.u64();
    header.skip(16, "event_types section");
    std::array<uint64_t, 4> feature_bits{};
    for (auto& word : feature_bits) word = header.u64();

    check_section(all, attrs_offset, attrs_size, "attrs section", 24);
    if (data_offset > all.size()) {
      throw Error("data section starts at " + std::to_string(data_offset) + ", past the end of the file (" +
                  std::to_string(all.size()) + " bytes)")
          .at(40)
          .in("file header")
          .hint("the file is truncated");
    }
    metadata_.data_offset = data_offset;
    if (data_size == 0) {
      metadata_.data_size_was_zero = true;
      metadata_.data_size = all.size() - data_offset;
      stats_.damage.push_back(
          "the header says the data section is empty (perf did not finish: killed, or its disk "
          "filled); "
          "reading records up to the end of the file, without the feature sections");
    } else if (data_size > all.size() - data_offset) {
      // Cut short (a copy that stopped, a full disk): the records up to the cut are still good,
      // and perf script reads them too. The feature sections that followed them are gone.
      metadata_.data_cut_short = true;
      metadata_.data_size = all.size() - data_offset;
      stats_.damage.push_back("the file ends at byte " + std::to_string(all.size()) + ", " +
                              std::to_string(data_size - metadata_.data_size) +
                              " bytes before the end of its data section [" + std::to_string(data_offset) + ", +" +
                              std::to_string(data_size) +
                              "): the records up to the cut were read; the rest and the feature sections (event names, "
                              "tracing data, build-ids) are lost");
    } else {
      metadata_.data_size = data_size;
    }

    read_attrs(all, attr_size, attrs_offset, attrs_size);
    if (!metadata_.data_size_was_zero && !metadata_.data_cut_short) {
      read_feature_table(all, data_offset + data_size, feature_bits);
    }
  }

  void throw_if_empty_pipe_file(Bytes all) {
    if (all.size() < kPipeHeaderSize) {
      throw Error("pipe header cut short").at(0).hint("the file is truncated");
    }
  }

  void open_pipe_from_file() {
    metadata_.pipe_mode = true;
    metadata_.data_offset = kPipeHeaderSize;
    metadata_.data_size = file_->bytes().size() - kPipeHeaderSize;
    pipe_file_ = true;
  }

  void check_section(Bytes all, uint64_t offset, uint64_t size, std::string_view what, uint64_t where) {
    if (offset > all.size() || size > all.size() - offset) {
      throw Error(std::string(what) + " [" + std::to_string(offset) + ", +" + std::to_string(size) +
                  ") lies outside the file (" + std::to_string(all.size()) + " bytes)")
          .at(where)
          .in("file header")
          .hint("the file is truncated or corrupt");
    }
  }

  void read_attrs(Bytes all, uint64_t attr_size, uint64_t offset, uint64_t size) {
    attrs_offset_ = offset;
    if (attr_size < kAttrSizeVer0 + 16 || attr_size > 4096) {
      throw Error("attr entry size " + std::to_string(attr_size) + " is implausible (expected " +
                  "64 to 4096 bytes plus 16 for the ids section)")
          .at(16)
          .in("file header")
          .hint("the file is corrupt");
    }
    if (size % attr_size != 0) {
      throw Error("attrs section size " + std::to_string(size) + " is not a multiple of the attr entry size " +
                  std::to_string(attr_size))
          .at(32)
          .in("file header")
          .hint("the file is corrupt");
    }
    for (uint64_t entry = offset; entry < offset + size; entry += attr_size) {
      Bytes bytes = all.subspan(entry, attr_size);
      uint32_t declared = load<uint32_t>(bytes.data() + 4);
      uint64_t attr_bytes = attr_size - 16;
      if (declared < kAttrSizeVer0 || declared > attr_bytes) {
        throw Error("attr.size " + std::to_string(declared) + " does not fit the attr entry of " +
                    std::to_string(attr_bytes) + " bytes")
            .at(entry + 4)
            .in("attrs section")
            .hint("the file is corrupt");
      }
      EventDesc event;
      event.attr = attr_from_bytes(bytes.first(declared));
      event.attr_size_in_file = declared;
      ByteCursor ids_section(bytes.subspan(attr_bytes), entry + attr_bytes, "attr ids section");
      uint64_t ids_offset = ids_section.u64(), ids_size = ids_section.u64();
      check_section(all, ids_offset, ids_size, "attr ids", entry + attr_bytes);
      if (ids_size % 8 != 0) {
        throw Error("attr ids size " + std::to_string(ids_size) + " is not a multiple of 8")
            .at(entry + attr_bytes + 8)
            .in("attrs section")
            .hint("the file is corrupt");
      }
      for (uint64_t i = 0; i < ids_size / 8; ++i) {
        event.ids.push_back(load<uint64_t>(all.data() + ids_offset + i * 8));
      }
      metadata_.events.push_back(std::move(event));
      add_event_layout();
    }
  }

  void read_feature_table(Bytes all, uint64_t table_offset, const std::array<uint64_t, 4>& bits) {
    uint64_t count = 0;
    for (uint64_t word : bits) count += static_cast<uint64_t>(std::popcount(word));
    Bytes after_data = all.subspan(std::min<uint64_t>(table_offset, all.size()));
    if (count > after_data.size() / 16) {
      stats_.damage.push_back("the file ends at byte " + std::to_string(all.size()) + ", inside the table of its " +
                              std::to_string(count) + " feature sections at " + std::to_string(table_offset) +
                              ": no feature section was read (event names, tracing data, "
                              "build-ids are lost); the data section is whole");
      return;
    }
    ByteCursor table(after_data, table_offset, "feature section table");
    for (uint64_t feature = 0; feature < 256; ++feature) {
      if (!(bits[feature / 64] >> (feature % 64) & 1)) continue;
      uint64_t offset = table.u64(), size = table.u64();
      // Sections lie after the table, in feature order: a file cut short loses the last ones.
      if (offset > all.size() || size > all.size() - offset) {
        stats_.damage.push_back("feature section " + feature_name(feature) + " [" + std::to_string(offset) + ", +" +
                                std::to_string(size) + ") runs past the end of the file (" +
                                std::to_string(all.size()) + " bytes): skipped");
        continue;
      }
      parse_feature(feature, all.subspan(offset, size), offset);
    }
  }

  static std::string feature_name(uint64_t feature) {
    // perf's HEADER_* numbering (tools/perf/util/header.h), for messages only.
    static constexpr std::array<std::string_view, 33> kNames = {
        "RESERVED",      "TRACING_DATA", "BUILD_ID",        "HOSTNAME",   "OSRELEASE",     "VERSION",    "ARCH",
        "NRCPUS",        "CPUDESC",      "CPUID",           "TOTAL_MEM",  "CMDLINE",       "EVENT_DESC", "CPU_TOPOLOGY",
        "NUMA_TOPOLOGY", "BRANCH_STACK", "PMU_MAPPINGS",    "GROUP_DESC", "AUXTRACE",      "STAT",       "CACHE",
        "SAMPLE_TIME",   "MEM_TOPOLOGY", "CLOCKID",         "DIR_FORMAT", "BPF_PROG_INFO", "BPF_BTF",    "COMPRESSED",
        "CPU_PMU_CAPS",  "CLOCK_DATA",   "HYBRID_TOPOLOGY", "PMU_CAPS",   "LAST_FEATURE"};
    if (feature < kNames.size() - 1) return std::string(kNames[feature]);
    return std::to_string(feature);
  }

  void parse_feature(uint64_t feature, Bytes bytes, uint64_t offset) {
    metadata_.features.push_back(feature);
    std::string context = "feature " + std::to_string(feature);
    ByteCursor cursor(bytes, offset, context);
    switch (feature) {
      case kFeatTracingData:
        metadata_.tracing_data.assign(bytes.begin(), bytes.end());
        metadata_.tracing_data_offset = offset;
        break;
      case kFeatBuildId: parse_build_ids(cursor); break;
      case kFeatHostname: metadata_.hostname = cursor.perf_string("HOSTNAME"); break;
      case kFeatOsRelease: metadata_.os_release = cursor.perf_string("OSRELEASE"); break;
      case kFeatVersion: metadata_.perf_version = cursor.perf_string("VERSION"); break;
      case kFeatArch: metadata_.arch = cursor.perf_string("ARCH"); break;
      case kFeatNrCpus:
        metadata_.nr_cpus_available = cursor.u32();
        metadata_.nr_cpus_online = cursor.u32();
        break;
      case kFeatCmdline: {
        uint32_t count = cursor.u32();
        cursor.require_array(count, 4, "CMDLINE strings");
        metadata_.cmdline.clear();
        for (uint32_t i = 0; i < count; ++i) {
          metadata_.cmdline.emplace_back(cursor.perf_string("CMDLINE"));
        }
        break;
      }
      case kFeatEventDesc: parse_event_desc(cursor); break;
      default: break;  // other features carry nothing lockscope uses
    }
  }

  void parse_build_ids(ByteCursor& cursor) {
    // A sequence of {perf_event_header, pid, build_id[24], filename} records.
    while (!cursor.at_end()) {
      uint64_t entry_offset = cursor.file_offset();
      perf_event_header header = cursor.read<perf_event_header>();
      constexpr uint32_t kFixed = 8 + 4 + 24;
      if (header.size < kFixed) {
        throw Error("build-id entry of " + std::to_string(header.size) + " bytes, smaller than " +
                    "its fixed part (36)")
            .at(entry_offset)
            .in("BUILD_ID")
            .hint("the file is corrupt");
      }
      cursor.require(header.size - 8, "a build-id entry");
      BuildIdEntry entry;
      entry.misc = header.misc;
      entry.pid = cursor.read<int32_t>();
      Bytes id = cursor.take(24, "build-id");
      size_t id_size = 20;
      if (header.misc & kMiscBuildIdSize) {
        id_size = std::min<size_t>(static_cast<size_t>(id[20]), 20);
      }
      entry.build_id_hex = build_id_hex(id.first(id_size));
      Bytes name = cursor.take(header.size - kFixed, "build-id filename");
      const char* chars = reinterpret_cast<const char*>(name.data());
      entry.filename.assign(chars, strnlen(chars, name.size()));
      metadata_.build_ids.push_back(std::move(entry));
    }
  }

  void parse_event_desc(ByteCursor& cursor) {
    uint32_t count = cursor.u32();
    uint32_t attr_size = cursor.u32();
    if (attr_size < kAttrSizeVer0) {
      cursor.fail("EVENT_DESC attr size " + std::to_string(attr_size) + " is below 64");
    }
    cursor.require_array(count, attr_size + 8ull, "EVENT_DESC events");
    for (uint32_t i = 0; i < count; ++i) {
      cursor.skip(attr_size, "EVENT_DESC attr");
      uint32_t nr_ids = cursor.u32();
      std::string name(cursor.perf_string("EVENT_DESC name"));
      cursor.require_array(nr_ids, 8, "EVENT_DESC ids");
      std::vector<uint64_t> ids(nr_ids);
      for (auto& id : ids) id = cursor.u64();
      name_event(ids, i, name);
    }
  }

  // Gives a name to the event that owns these ids (or, without ids, the index-th event).
  void name_event(const std::vector<uint64_t>& ids, size_t index, const std::string& name) {
    for (uint64_t id : ids) {
      if (const EventDesc* event = event_for_id(id)) {
        metadata_.events[event->index].name = name;
        return;
      }
    }
    if (ids.empty() && index < metadata_.events.size()) metadata_.events[index].name = name;
  }

  // The sample layout of the newest event, and how a sample's id is found. Checked one event at a
  // time, so that an error points at the attr that broke the rule, and so that a stream of many
  // HEADER_ATTR records costs linear time (rebuilding everything per attr was quadratic: 32,000
  // attrs took 11 s).
  void add_event_layout() {
    size_t index = metadata_.events.size() - 1;
    EventDesc& event = metadata_.events[index];
    event.index = index;
    event.layout = layout_for(event.attr);
    id_table_stale_ = true;
    const SampleLayout& first = metadata_.events.front().layout;
    trailer_layout_ = &first;  // again: the push may have moved the events
    if (index == 0) {
      sample_id_offset_ = -1;  // one event: every sample is its
      return;
    }
    if (first.id_offset_in_sample < 0 || event.layout.id_offset_in_sample != first.id_offset_in_sample) {
      throw Error("the events' sample_type values do not let a sample be matched to its event " +
                  std::string("(expected ID or IDENTIFIER at one position in every event's samples)"))
          .at(attrs_offset_)
          .in("attrs")
          .hint("record with `perf record` (it adds PERF_SAMPLE_IDENTIFIER)");
    }
    sample_id_offset_ = first.id_offset_in_sample;
    // perf itself refuses recordings whose events disagree on the sample_id_all trailer.
    if (event.layout.sample_id_all != first.sample_id_all || event.layout.trailer_size != first.trailer_size ||
        event.layout.id_offset_from_end != first.id_offset_from_end) {
      throw Error("the events disagree on the sample_id_all trailer layout (expected one layout for all)")
          .at(attrs_offset_)
          .in("attrs")
          .hint("the recording mixes incompatible events");
    }
  }

  // The id -> event map, built when an id is first looked up after events were added.
  void build_id_table() {
    id_table_stale_ = false;
    id_to_event_.clear();
    for (const EventDesc& event : metadata_.events) {
      for (uint64_t id : event.ids) id_to_event_.push_back({id, event.index});
    }
    // Sorted by id; an id listed twice belongs to the later event.
    std::stable_sort(id_to_event_.begin(), id_to_event_.end(),
                     [](const IdEvent& a, const IdEvent& b) { return a.id < b.id; });
    auto last_of_each = std::unique(id_to_event_.rbegin(), id_to_event_.rend(),
                                    [](const IdEvent& a, const IdEvent& b) { return a.id == b.id; });
    id_to_event_.erase(id_to_event_.begin(), last_of_each.base());
    // perf numbers ids from a small counter: when they span little, index a table by id.
    events_by_dense_id_.clear();
    if (!id_to_event_.empty() && id_to_event_.back().id - id_to_event_.front().id < kMaxDenseIdSpan) {
      dense_first_id_ = id_to_event_.front().id;
      events_by_dense_id_.assign(id_to_event_.back().id - dense_first_id_ + 1, kNoEvent);
      for (const IdEvent& entry : id_to_event_) {
        events_by_dense_id_[entry.id - dense_first_id_] = static_cast<uint32_t>(entry.event);
      }
    }
  }

  // ---- pipe mode ----

  void open_stream(int fd) {
    metadata_.pipe_mode = true;
    stream_ = std::make_unique<StreamRecordSource>(fd, 0);
    Bytes header = stream_->read_exact(kPipeHeaderSize, "the pipe header");
    check_magic(load<uint64_t>(header.data()), 0);
    uint64_t size = load<uint64_t>(header.data() + 8);
    if (size != kPipeHeaderSize) {
      throw Error("header size " + std::to_string(size) + " on standard input, expected 16 " + "(pipe mode)")
          .at(8)
          .hint("pipe the output of `perf record -o -`, or pass the file name");
    }
    metadata_.data_offset = kPipeHeaderSize;
  }

  void announce_metadata() {
    if (metadata_announced_) return;
    metadata_announced_ = true;
    visitor_->on_metadata(metadata_);
  }

  // ---- records ----

  template <typename Source>
  void read_all(Source& source) {
    RawRecord record;
    while (visitor_->wants_more() && source.next(record)) {
      handle_record(record, [&](uint64_t size, uint64_t offset) { return source.take_trailing_payload(size, offset); });
    }
  }

  template <typename TakePayload>
  void handle_record(const RawRecord& record, TakePayload&& take_payload) {
    uint32_t type = record.header.type;
    ++record_counts_[std::min<uint32_t>(type, kCountedTypes - 1)];
    switch (type) {
      case kHeaderAttr: parse_header_attr(record); return;
      case kHeaderTracingData: {
        ByteCursor cursor(record.bytes.subspan(8), record.file_offset + 8, "HEADER_TRACING_DATA");
        uint32_t size = cursor.u32();
        uint64_t payload_offset = record.file_offset + record.header.size;
        Bytes payload = take_payload(size, record.file_offset);
        metadata_.tracing_data.assign(payload.begin(), payload.end());
        metadata_.tracing_data_offset = payload_offset;
        metadata_.features.push_back(kFeatTracingData);
        return;
      }
      case kAuxtrace: {
        ByteCursor cursor(record.bytes.subspan(8), record.file_offset + 8, "AUXTRACE");
        take_payload(cursor.u64(), record.file_offset);
        return;
      }
      case kHeaderBuildId: {
        ByteCursor cursor(record.bytes, record.file_offset, "HEADER_BUILD_ID");
        parse_build_ids(cursor);
        return;
      }
      case kHeaderFeature: {
        ByteCursor cursor(record.bytes.subspan(8), record.file_offset + 8, "HEADER_FEATURE");
        uint64_t feature = cursor.u64();
        parse_feature(feature, record.bytes.subspan(16), record.file_offset + 16);
        return;
      }
      case kEventUpdate: parse_event_update(record); return;
      case kFinishedInit: announce_metadata(); return;
      case kFinishedRound:
        if (order_ == RecordOrder::time) flush_queue(queue_.round_limit());
        return;
      case kCompressed:
      case kCompressed2: handle_compressed(record); return;
      case kHeaderEventType:
      case kIdIndex:
      case kAuxtraceInfo:
      case kAuxtraceError:
      case kThreadMap:
      case kCpuMap:
      case kStatConfig:
      case kStat:
      case kStatRound:
      case kTimeConv: return;  // known, carry nothing lockscope uses
      default: break;
    }
    if (type >= 64 || type == 0) {
      ++stats_.unknown_records_skipped;
      return;
    }
    announce_metadata();
    if (order_ == RecordOrder::time) {
      queue_.push(record, record_time(record));
    } else {
      dispatch(record);
    }
  }

  void handle_compressed(const RawRecord& record) {
    ByteCursor cursor(record.bytes.subspan(8), record.file_offset + 8, record_context(record.header.type));
    Bytes payload;
    if (record.header.type == kCompressed2) {
      uint64_t data_size = cursor.u64();
      payload = cursor.take(data_size, "the compressed payload (data_size)");
    } else {
      payload = cursor.take(cursor.remaining(), "the compressed payload");
    }
    if (!decompressed_) decompressed_ = std::make_unique<DecompressedRecordSource>();
    stats_.compressed_bytes_in += payload.size();
    stats_.compressed_bytes_out += decompressed_->feed(payload, record.file_offset);
    RawRecord inner;
    while (decompressed_->next(inner)) {
      // Its payload would point into the buffer that feeding it rewrites. perf never nests them.
      if (inner.header.type == kCompressed || inner.header.type == kCompressed2) {
        throw Error("a compressed record inside the compressed stream")
            .at(inner.file_offset)
            .in("PERF_RECORD_COMPRESSED")
            .hint("the file is corrupt");
      }
      handle_record(inner, [&](uint64_t, uint64_t offset) -> Bytes {
        throw Error("a record inside a compressed stream claims a trailing payload")
            .at(offset)
            .in("PERF_RECORD_COMPRESSED")
            .hint("the file is corrupt");
      });
    }
  }

  void parse_header_attr(const RawRecord& record) {
    attrs_offset_ = record.file_offset;
    ByteCursor cursor(record.bytes.subspan(8), record.file_offset + 8, "HEADER_ATTR");
    cursor.require(8, "perf_event_attr type and size");
    uint32_t declared = load<uint32_t>(record.bytes.data() + 12);
    if (declared < kAttrSizeVer0) {
      cursor.fail("attr.size " + std::to_string(declared) + " is below 64");
    }
    Bytes attr_bytes = cursor.take(declared, "perf_event_attr");
    if (cursor.remaining() % 8 != 0) {
      cursor.fail("the ids after the attr are not a whole number of u64");
    }
    EventDesc event;
    event.attr = attr_from_bytes(attr_bytes);
    event.attr_size_in_file = declared;
    while (!cursor.at_end()) event.ids.push_back(cursor.u64());
    metadata_.events.push_back(std::move(event));
    add_event_layout();
  }

  void parse_event_update(const RawRecord& record) {
    ByteCursor cursor(record.bytes.subspan(8), record.file_offset + 8, "EVENT_UPDATE");
    uint64_t type = cursor.u64();
    uint64_t id = cursor.u64();
    if (type != kEventUpdateName) return;
    Bytes rest = cursor.take(cursor.remaining(), "the event name");
    const char* chars = reinterpret_cast<const char*>(rest.data());
    name_event({id}, SIZE_MAX, std::string(chars, strnlen(chars, rest.size())));
  }

  void flush_queue(uint64_t limit) {
    queue_.flush(limit, [&](const RawRecord& record) { dispatch(record); });
  }

  // The time of a kernel record, for ordering: the sample's TIME field, or the trailer's.
  uint64_t record_time(const RawRecord& record) {
    if (record.header.type == PERF_RECORD_SAMPLE) {
      const EventDesc* event = find_sample_event(record);
      if (event == nullptr || !(event->layout.sample_type & PERF_SAMPLE_TIME)) return 0;
      uint64_t offset = 8;
      for (uint64_t bit : {PERF_SAMPLE_IDENTIFIER, PERF_SAMPLE_IP, PERF_SAMPLE_TID}) {
        if (event->layout.sample_type & bit) offset += 8;
      }
      if (offset + 8 > record.bytes.size()) return 0;  // dispatch reports the short record
      return load<uint64_t>(record.bytes.data() + offset);
    }
    SampleId id;
    parse_trailer(record, id);
    return id.time;
  }

  const EventDesc* find_sample_event(const RawRecord& record) {
    if (metadata_.events.size() == 1) return &metadata_.events.front();
    if (sample_id_offset_ < 0) return nullptr;
    uint64_t offset = 8 + static_cast<uint64_t>(sample_id_offset_);
    if (offset + 8 > record.bytes.size()) {
      throw Error("the sample is too short (" + std::to_string(record.bytes.size()) + " bytes) to hold its event id")
          .at(record.file_offset)
          .in("PERF_RECORD_SAMPLE")
          .hint("the file is corrupt");
    }
    return event_for_id(load<uint64_t>(record.bytes.data() + offset));
  }

  const EventDesc* event_for_id(uint64_t id) {
    if (id_table_stale_) build_id_table();
    if (!events_by_dense_id_.empty()) {
      if (id < dense_first_id_ || id - dense_first_id_ >= events_by_dense_id_.size()) return nullptr;
      uint32_t event = events_by_dense_id_[id - dense_first_id_];
      return event == kNoEvent ? nullptr : &metadata_.events[event];
    }
    auto found = std::lower_bound(id_to_event_.begin(), id_to_event_.end(), id,
                                  [](const IdEvent& entry, uint64_t key) { return entry.id < key; });
    return found == id_to_event_.end() || found->id != id ? nullptr : &metadata_.events[found->event];
  }

  // Parses the sample_id_all trailer from the end; returns the body without it.
  Bytes parse_trailer(const RawRecord& record, SampleId& id) {
    Bytes body = record.bytes.subspan(8);
    if (trailer_layout_ == nullptr || !trailer_layout_->sample_id_all) return body;
    uint32_t size = trailer_layout_->trailer_size;
    if (size > body.size()) {
      throw Error("the record (" + std::to_string(record.header.size) + " bytes) is too short " +
                  "for its sample_id_all trailer of " + std::to_string(size) + " bytes")
          .at(record.file_offset)
          .in(std::string(record_context(record.header.type)))
          .hint("the file is corrupt");
    }
    const std::byte* p = body.data() + body.size() - size;
    uint64_t type = trailer_layout_->sample_type;
    if (type & PERF_SAMPLE_TID) {
      id.pid = load<uint32_t>(p);
      id.tid = load<uint32_t>(p + 4);
      p += 8;
    }
    if (type & PERF_SAMPLE_TIME) {
      id.time = load<uint64_t>(p);
      p += 8;
    }
    if (type & PERF_SAMPLE_ID) {
      id.id = load<uint64_t>(p);
      p += 8;
    }
    if (type & PERF_SAMPLE_STREAM_ID) p += 8;
    if (type & PERF_SAMPLE_CPU) {
      id.cpu = load<uint32_t>(p);
      p += 8;
    }
    if (type & PERF_SAMPLE_IDENTIFIER) {
      id.id = load<uint64_t>(p);
      p += 8;
    }
    id.present = true;
    return body.first(body.size() - size);
  }

  void dispatch(const RawRecord& record) {
    switch (record.header.type) {
      case PERF_RECORD_SAMPLE: dispatch_sample(record); return;
      case PERF_RECORD_COMM: {
        CommRecord comm{};
        Bytes body = parse_trailer(record, comm.sample_id);
        ByteCursor cursor(body, record.file_offset + 8, "PERF_RECORD_COMM");
        comm.pid = cursor.u32();
        comm.tid = cursor.u32();
        comm.comm = cursor.c_string("the comm");
        comm.exec = (record.header.misc & kMiscCommExec) != 0;
        visitor_->on_comm(comm);
        return;
      }
      case PERF_RECORD_FORK:
      case PERF_RECORD_EXIT: {
        TaskRecord task{};
        Bytes body = parse_trailer(record, task.sample_id);
        ByteCursor cursor(body, record.file_offset + 8, record_context(record.header.type));
        task.pid = cursor.u32();
        task.ppid = cursor.u32();
        task.tid = cursor.u32();
        task.ptid = cursor.u32();
        task.time = cursor.u64();
        if (record.header.type == PERF_RECORD_FORK) {
          visitor_->on_fork(task);
        } else {
          visitor_->on_exit(task);
        }
        return;
      }
      case PERF_RECORD_MMAP:
      case PERF_RECORD_MMAP2: {
        MmapRecord map{};
        Bytes body = parse_trailer(record, map.sample_id);
        ByteCursor cursor(body, record.file_offset + 8, record_context(record.header.type));
        map.pid = cursor.u32();
        map.tid = cursor.u32();
        map.start = cursor.u64();
        map.len = cursor.u64();
        map.pgoff = cursor.u64();
        if (record.header.type == PERF_RECORD_MMAP2) {
          cursor.skip(24 + 8, "MMAP2 inode/build-id, prot and flags");
        }
        map.filename = cursor.c_string("the mapped file name");
        uint16_t cpumode = record.header.misc & PERF_RECORD_MISC_CPUMODE_MASK;
        map.kernel = cpumode == PERF_RECORD_MISC_KERNEL || cpumode == PERF_RECORD_MISC_GUEST_KERNEL;
        visitor_->on_mmap(map);
        return;
      }
      case PERF_RECORD_LOST: {
        LostRecord lost{};
        Bytes body = parse_trailer(record, lost.sample_id);
        ByteCursor cursor(body, record.file_offset + 8, "PERF_RECORD_LOST");
        lost.id = cursor.u64();
        lost.lost = cursor.u64();
        stats_.lost_events += lost.lost;
        visitor_->on_lost(lost);
        return;
      }
      case PERF_RECORD_LOST_SAMPLES: {
        SampleId id;
        Bytes body = parse_trailer(record, id);
        ByteCursor cursor(body, record.file_offset + 8, "PERF_RECORD_LOST_SAMPLES");
        uint64_t lost = cursor.u64();
        stats_.lost_samples += lost;
        visitor_->on_lost_samples(lost, id);
        return;
      }
      case PERF_RECORD_THROTTLE:
      case PERF_RECORD_UNTHROTTLE: {
        SampleId id;
        Bytes body = parse_trailer(record, id);
        ByteCursor cursor(body, record.file_offset + 8, record_context(record.header.type));
        ThrottleRecord throttle{};
        throttle.throttle = record.header.type == PERF_RECORD_THROTTLE;
        throttle.time = cursor.u64();
        throttle.id = cursor.u64();
        throttle.stream_id = cursor.u64();
        visitor_->on_throttle(throttle);
        return;
      }
      default: return;  // other kernel records (SWITCH, KSYMBOL, ...) carry nothing lockscope uses
    }
  }

  void dispatch_sample(const RawRecord& record) {
    const EventDesc* event = find_sample_event(record);
    if (event == nullptr) {
      ++stats_.samples_without_event;
      return;
    }
    ++stats_.samples;
    ByteCursor cursor(record.bytes.subspan(8), record.file_offset + 8, "PERF_RECORD_SAMPLE");
    // Reused (no allocation per record), and every field assigned once: clearing it first with
    // `sample = Sample{}` compiled to a `rep stos` that cost a fifth of this function.
    Sample& sample = sample_;
    sample.event = event;
    sample.file_offset = record.file_offset;
    sample.misc = record.header.misc;
    const SampleLayout& layout = event->layout;
    uint64_t type = layout.sample_type;
    uint64_t identifier = (type & PERF_SAMPLE_IDENTIFIER) ? cursor.u64() : 0;
    sample.ip = (type & PERF_SAMPLE_IP) ? cursor.u64() : 0;
    sample.pid = (type & PERF_SAMPLE_TID) ? cursor.u32() : 0;
    sample.tid = (type & PERF_SAMPLE_TID) ? cursor.u32() : 0;
    sample.time = (type & PERF_SAMPLE_TIME) ? cursor.u64() : 0;
    sample.addr = (type & PERF_SAMPLE_ADDR) ? cursor.u64() : 0;
    sample.id = (type & PERF_SAMPLE_ID) ? cursor.u64() : identifier;
    sample.stream_id = (type & PERF_SAMPLE_STREAM_ID) ? cursor.u64() : 0;
    sample.cpu = 0;
    if (type & PERF_SAMPLE_CPU) {
      sample.cpu = cursor.u32();
      cursor.u32();  // reserved
    }
    sample.period = (type & PERF_SAMPLE_PERIOD) ? cursor.u64() : 0;
    if (type & PERF_SAMPLE_READ) skip_read_values(cursor, layout.read_format);
    sample.callchain = Callchain();
    if (type & PERF_SAMPLE_CALLCHAIN) {
      uint64_t count = cursor.u64();
      cursor.require_array(count, 8, "callchain entries");
      Bytes ips = cursor.take(count * 8, "callchain");
      sample.callchain = Callchain(ips.data(), count);
    }
    sample.raw = Bytes();
    if (type & PERF_SAMPLE_RAW) {
      uint32_t size = cursor.u32();
      sample.raw = cursor.take(size, "raw tracepoint data");
    }
    skip_trailing_sample_fields(cursor, layout);
    visitor_->on_sample(sample);
  }

  static void skip_read_values(ByteCursor& cursor, uint64_t read_format) {
    uint64_t per_value = 8;
    if (read_format & PERF_FORMAT_ID) per_value += 8;
    if (read_format & PERF_FORMAT_LOST) per_value += 8;
    if (read_format & PERF_FORMAT_GROUP) {
      uint64_t count = cursor.u64();
      if (read_format & PERF_FORMAT_TOTAL_TIME_ENABLED) cursor.u64();
      if (read_format & PERF_FORMAT_TOTAL_TIME_RUNNING) cursor.u64();
      cursor.require_array(count, per_value, "group read values");
      cursor.skip(count * per_value, "group read values");
    } else {
      uint64_t size = per_value;
      if (read_format & PERF_FORMAT_TOTAL_TIME_ENABLED) size += 8;
      if (read_format & PERF_FORMAT_TOTAL_TIME_RUNNING) size += 8;
      cursor.skip(size, "read values");
    }
  }

  // Fields after RAW are not used, but walking them checks the sample's size is consistent.
  static void skip_trailing_sample_fields(ByteCursor& cursor, const SampleLayout& layout) {
    uint64_t type = layout.sample_type;
    if (type & PERF_SAMPLE_BRANCH_STACK) {
      uint64_t count = cursor.u64();
      if (layout.branch_sample_type & PERF_SAMPLE_BRANCH_HW_INDEX) cursor.u64();
      cursor.require_array(count, 24, "branch stack entries");
      cursor.skip(count * 24, "branch stack");
    }
    if (type & PERF_SAMPLE_REGS_USER) {
      if (cursor.u64() != 0) {
        cursor.skip(8ull * static_cast<uint64_t>(std::popcount(layout.regs_user_mask)), "user regs");
      }
    }
    if (type & PERF_SAMPLE_STACK_USER) {
      uint64_t size = cursor.u64();
      cursor.skip(size, "user stack");
      if (size != 0) cursor.u64();  // dyn_size
    }
    for (uint64_t bit : {static_cast<uint64_t>(PERF_SAMPLE_WEIGHT) | PERF_SAMPLE_WEIGHT_STRUCT,
                         static_cast<uint64_t>(PERF_SAMPLE_DATA_SRC), static_cast<uint64_t>(PERF_SAMPLE_TRANSACTION)}) {
      if (type & bit) cursor.u64();
    }
    if (type & PERF_SAMPLE_REGS_INTR) {
      if (cursor.u64() != 0) {
        cursor.skip(8ull * static_cast<uint64_t>(std::popcount(layout.regs_intr_mask)), "intr regs");
      }
    }
    for (uint64_t bit :
         {PERF_SAMPLE_PHYS_ADDR, PERF_SAMPLE_CGROUP, PERF_SAMPLE_DATA_PAGE_SIZE, PERF_SAMPLE_CODE_PAGE_SIZE}) {
      if (type & bit) cursor.u64();
    }
    if (type & PERF_SAMPLE_AUX) {
      uint64_t size = cursor.u64();
      cursor.skip(size, "aux sample data");
    }
  }

  std::string path_;
  std::string display_name_;
  std::unique_ptr<MappedFile> file_;
  std::unique_ptr<StreamRecordSource> stream_;
  int data_fd_ = -1;
  std::unique_ptr<StreamRecordSource> data_section_;  // file mode
  std::unique_ptr<DecompressedRecordSource> decompressed_;
  bool pipe_file_ = false;
  Metadata metadata_;
  ReadStats stats_;
  RecordVisitor* visitor_ = nullptr;
  RecordOrder order_ = RecordOrder::file;
  bool metadata_announced_ = false;
  // Which event a sample id belongs to, sorted by id: a binary search over a few dozen ids beats
  // hashing (with its division) twice per sample; a table beats both.
  struct IdEvent {
    uint64_t id;
    size_t event;
  };
  std::vector<IdEvent> id_to_event_;
  bool id_table_stale_ = false;  // events were added since id_to_event_ was built
  // The same, as a table indexed by id - dense_first_id_, when the ids span less than this.
  static constexpr uint64_t kMaxDenseIdSpan = 1u << 16;
  static constexpr uint32_t kNoEvent = UINT32_MAX;
  uint64_t dense_first_id_ = 0;
  std::vector<uint32_t> events_by_dense_id_;
  int sample_id_offset_ = -1;
  uint64_t attrs_offset_ = 0;  // of the attrs section, or of the latest HEADER_ATTR (for errors)
  const SampleLayout* trailer_layout_ = nullptr;
  TimeOrderQueue queue_;
  Sample sample_;
  static constexpr uint32_t kCountedTypes = 128;  // the last slot counts every larger type
  std::array<uint64_t, kCountedTypes> record_counts_{};
};

}  // namespace

std::string_view record_type_name(uint32_t type) {
  for (const auto& entry : kRecordTypeNames) {
    if (entry.type == type) return entry.name;
  }
  return "UNKNOWN";
}

std::unique_ptr<PerfDataReader> PerfDataReader::open(const std::string& path, const std::string& display_name) {
  auto reader = std::make_unique<Reader>(path, display_name);
  reader->open();
  return reader;
}

std::unique_ptr<PerfDataReader> PerfDataReader::open_stream(int fd, const std::string& name) {
  auto reader = std::make_unique<Reader>(name);
  reader->open(fd);
  return reader;
}

KernelImageInfo read_kernel_image_info(const std::string& path, const std::string& display_name) {
  class KernelMapFinder final : public RecordVisitor {
   public:
    void on_mmap(const MmapRecord& map) override {
      if (map.kernel && map.filename.starts_with("[kernel.kallsyms]")) {
        found = true;
        pgoff = map.pgoff;
      }
    }
    bool wants_more() const override { return !found; }
    bool found = false;
    uint64_t pgoff = 0;
  };
  auto reader = PerfDataReader::open(path, display_name);
  KernelMapFinder finder;
  reader->read(finder);
  KernelImageInfo info;
  info.has_text_address = finder.found && finder.pgoff != 0;
  info.text_address = finder.pgoff;
  info.os_release = reader->metadata().os_release;
  for (const auto& entry : reader->metadata().build_ids) {
    if (entry.filename == "[kernel.kallsyms]") info.build_id_hex = entry.build_id_hex;
  }
  return info;
}

}  // namespace lockscope::perf
