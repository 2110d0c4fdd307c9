// perf.data reader: opens a recording (file or pipe mode) and walks its records, handing each to
// the visitor, in file or time order. Its parts live beside it: the file header, attrs and feature
// sections (file_header, feature_sections), events and sample layouts (event_table,
// sample_layout), record sources (record_sources), time order (time_order). Facts of the format:
// the kernel's tools/perf/Documentation/perf.data-file-format.txt and
// include/uapi/linux/perf_event.h.
#include <fcntl.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "byte_cursor.hpp"
#include "event_table.hpp"
#include "feature_sections.hpp"
#include "file_header.hpp"
#include "lockscope/error.hpp"
#include "lockscope/perf_data.hpp"
#include "lockscope/unique_fd.hpp"
#include "record_sources.hpp"
#include "record_types.hpp"
#include "sample_layout.hpp"
#include "time_order.hpp"

namespace lockscope::perf {
namespace {

constexpr uint32_t kAttrSizeVer0 = 64;  // PERF_ATTR_SIZE_VER0: the smallest attr perf ever wrote
constexpr uint16_t kMiscCommExec = 1u << 13;
constexpr uint32_t kEventUpdateName = 2;

class Reader final : public PerfDataReader {
 public:
  explicit Reader(std::string path, std::string display_name = "")
      : path_(std::move(path)), display_name_(std::move(display_name)) {}
  ~Reader() override = default;
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
        note_partial_record(*stream_);
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
  const std::string& path() const override { return path_; }

 private:
  std::string display_path() const {
    if (!display_name_.empty()) return display_name_;
    return path_ == "-" ? "<stdin>" : path_;
  }

  // ---- opening ----

  void open_file() {
    Bytes all = file_->bytes();
    FileHeader header = read_file_header(all);
    if (header.header_size == kPipeHeaderSize) {
      // A pipe-mode stream saved to a file: its records are read as a stream.
      metadata_.pipe_mode = true;
      metadata_.data_offset = kPipeHeaderSize;
      metadata_.data_size = all.size() - kPipeHeaderSize;
      pipe_file_ = true;
      return;
    }
    data_section_bounds(header, all, metadata_, stats_.damage);
    read_attrs_section(header, all, events_);
    if (!metadata_.data_size_was_zero && !metadata_.data_cut_short) {
      read_feature_sections(header, all, metadata_, events_, stats_.damage);
    }
  }

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

  // ---- reading ----

  // The data section is read through a buffer, not the mapping (see StreamRecordSource). The
  // source lives as long as the reader: the time-order queue holds records in its buffer until the
  // final flush.
  void read_data_section() {
    data_fd_ = UniqueFd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!data_fd_.valid()) {
      throw Error(std::string("cannot open the data section: ") + strerror(errno)).at(metadata_.data_offset);
    }
    if (lseek(data_fd_.get(), static_cast<off_t>(metadata_.data_offset), SEEK_SET) < 0) {
      throw Error(std::string("cannot seek to the data section: ") + strerror(errno)).at(metadata_.data_offset);
    }
    data_section_ = std::make_unique<StreamRecordSource>(data_fd_.get(), metadata_.data_offset, metadata_.data_size);
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
    note_partial_record(source);
  }

  // ---- damage and counts ----

  template <typename Source>
  void note_partial_record(const Source& source) {
    if (source.stopped_at_partial_record()) {
      stats_.damage.push_back("the data ends with a partial record at offset " +
                              std::to_string(source.partial_record_offset()) +
                              " (perf was stopped mid-write); it was ignored");
    }
  }

  // Counting into an array keeps string work out of the per-record path.
  void publish_record_counts() {
    stats_.records_by_type.clear();
    for (uint32_t type = 0; type < kCountedTypes; ++type) {
      if (record_counts_[type] == 0) continue;
      std::string name(type == kCountedTypes - 1 ? "UNKNOWN" : record_type_name(type));
      stats_.records_by_type[name] += record_counts_[type];
    }
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
        metadata_.features.push_back(kFeatureTracingData);
        return;
      }
      case kAuxtrace: {
        ByteCursor cursor(record.bytes.subspan(8), record.file_offset + 8, "AUXTRACE");
        take_payload(cursor.u64(), record.file_offset);
        return;
      }
      case kHeaderBuildId: {
        ByteCursor cursor(record.bytes, record.file_offset, "HEADER_BUILD_ID");
        parse_build_ids(cursor, metadata_);
        return;
      }
      case kHeaderFeature: {
        ByteCursor cursor(record.bytes.subspan(8), record.file_offset + 8, "HEADER_FEATURE");
        uint64_t feature = cursor.u64();
        parse_feature_section(feature, record.bytes.subspan(16), record.file_offset + 16, metadata_, events_);
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
    events_.add(std::move(event), record.file_offset);
  }

  void parse_event_update(const RawRecord& record) {
    ByteCursor cursor(record.bytes.subspan(8), record.file_offset + 8, "EVENT_UPDATE");
    uint64_t type = cursor.u64();
    uint64_t id = cursor.u64();
    if (type != kEventUpdateName) return;
    Bytes rest = cursor.take(cursor.remaining(), "the event name");
    const char* chars = reinterpret_cast<const char*>(rest.data());
    events_.name_event({id}, SIZE_MAX, std::string(chars, strnlen(chars, rest.size())));
  }

  void flush_queue(uint64_t limit) {
    queue_.flush(limit, [&](const RawRecord& record) { dispatch(record); });
  }

  // The time of a kernel record, for ordering: the sample's TIME field, or the trailer's; both at
  // offsets the event's layout knows.
  uint64_t record_time(const RawRecord& record) {
    if (record.header.type == PERF_RECORD_SAMPLE) {
      const EventDesc* event = events_.event_of_sample(record);
      return event == nullptr ? 0 : sample_time(record, events_.layout_of(*event));
    }
    const SampleLayout* trailer = events_.trailer_layout();
    return trailer == nullptr ? 0 : sample_id_time(record, *trailer);
  }

  // The record's body without its sample_id_all trailer, which goes to `id`.
  Bytes body_and_sample_id(const RawRecord& record, SampleId& id) {
    const SampleLayout* trailer = events_.trailer_layout();
    if (trailer == nullptr) return record.bytes.subspan(sizeof(perf_event_header));
    return read_sample_id(record, *trailer, id);
  }

  void dispatch(const RawRecord& record) {
    switch (record.header.type) {
      case PERF_RECORD_SAMPLE: dispatch_sample(record); return;
      case PERF_RECORD_COMM: {
        CommRecord comm{};
        Bytes body = body_and_sample_id(record, comm.sample_id);
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
        Bytes body = body_and_sample_id(record, task.sample_id);
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
        Bytes body = body_and_sample_id(record, map.sample_id);
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
        Bytes body = body_and_sample_id(record, lost.sample_id);
        ByteCursor cursor(body, record.file_offset + 8, "PERF_RECORD_LOST");
        lost.id = cursor.u64();
        lost.lost = cursor.u64();
        stats_.lost_events += lost.lost;
        visitor_->on_lost(lost);
        return;
      }
      case PERF_RECORD_LOST_SAMPLES: {
        SampleId id;
        Bytes body = body_and_sample_id(record, id);
        ByteCursor cursor(body, record.file_offset + 8, "PERF_RECORD_LOST_SAMPLES");
        uint64_t lost = cursor.u64();
        stats_.lost_samples += lost;
        visitor_->on_lost_samples(lost, id);
        return;
      }
      case PERF_RECORD_THROTTLE:
      case PERF_RECORD_UNTHROTTLE: {
        SampleId id;
        Bytes body = body_and_sample_id(record, id);
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
    const EventDesc* event = events_.event_of_sample(record);
    if (event == nullptr) {
      ++stats_.samples_without_event;
      return;
    }
    ++stats_.samples;
    // Reused: no allocation per record.
    sample_.event = event;
    sample_.file_offset = record.file_offset;
    sample_.misc = record.header.misc;
    read_sample_body(record, events_.layout_of(*event), sample_);
    visitor_->on_sample(sample_);
  }

  std::string path_;
  std::string display_name_;
  std::unique_ptr<MappedFile> file_;
  std::unique_ptr<StreamRecordSource> stream_;
  UniqueFd data_fd_;
  std::unique_ptr<StreamRecordSource> data_section_;  // file mode
  std::unique_ptr<DecompressedRecordSource> decompressed_;
  bool pipe_file_ = false;
  Metadata metadata_;
  EventTable events_{metadata_.events};
  ReadStats stats_;
  RecordVisitor* visitor_ = nullptr;
  RecordOrder order_ = RecordOrder::file;
  bool metadata_announced_ = false;
  TimeOrderQueue queue_;
  Sample sample_;
  static constexpr uint32_t kCountedTypes = 128;  // the last slot counts every larger type
  std::array<uint64_t, kCountedTypes> record_counts_{};
};

}  // namespace

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

}  // namespace lockscope::perf
