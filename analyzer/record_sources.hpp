// Where records come from: an mmapped file, a stream (pipe mode), or the zstd stream inside
// COMPRESSED records. Each hands out one whole record at a time as a view, checked to fit.
// Internal to analyzer/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lockscope/perf_data.hpp"

struct ZSTD_DCtx_s;

namespace lockscope::perf {

struct RawRecord {
  perf_event_header header{};
  Bytes bytes;               // the whole record, header included
  uint64_t file_offset = 0;  // of the record, or of the COMPRESSED record it came from
  // The bytes stay valid for the whole read (an mmapped file), so they need not be copied to be
  // held back for time ordering.
  bool stable = false;
};

// A read-only mapping of a whole file. Pages already consumed are dropped from the mapping as the
// reader moves on, so resident memory stays flat however long the recording.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  Bytes bytes() const { return {data_, size_}; }
  // Dropping pages is worth a system call only every few MiB.
  bool release_due(uint64_t offset) const { return offset >= released_ + kDropChunk; }
  void release_before(uint64_t offset);
  static constexpr uint64_t kDropChunk = 16u << 20;
  // Maps the next window of the file in one system call when the reader gets near its end: one
  // page fault per 4 KiB page costs more than the parsing itself.
  void populate_ahead(uint64_t offset) {
    if (offset + kPopulateWindow / 2 >= populated_) populate_from(offset);
  }
  static constexpr uint64_t kPopulateWindow = 8u << 20;

 private:
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  uint64_t released_ = 0;
  uint64_t populated_ = 0;
  void populate_from(uint64_t offset);
};

// Records of the data section of an mmapped file.
class FileRecordSource {
 public:
  // to_end_of_file: the header said data size 0 (perf was killed); read whole records to the end
  // and stop quietly at a trailing partial one.
  FileRecordSource(MappedFile& file, uint64_t begin, uint64_t end, bool to_end_of_file);
  bool next(RawRecord& out);
  Bytes take_trailing_payload(uint64_t size, uint64_t record_offset);
  bool stopped_at_partial_record() const { return stopped_at_partial_; }
  uint64_t partial_record_offset() const { return position_; }

 private:
  MappedFile& file_;
  uint64_t position_;
  uint64_t end_;
  bool to_end_of_file_;
  bool stopped_at_partial_ = false;
};

// Records read from a file descriptor (pipe mode). The buffer holds at most one record plus the
// payload that may trail it, so memory stays bounded.
class StreamRecordSource {
 public:
  StreamRecordSource(int fd, uint64_t start_offset);
  bool next(RawRecord& out);
  Bytes take_trailing_payload(uint64_t size, uint64_t record_offset);
  // Reads exactly `size` bytes at the start of the stream (the pipe header).
  Bytes read_exact(size_t size, std::string_view what);
  // The stream ended inside a record (perf was stopped mid-write).
  bool stopped_at_partial_record() const { return stopped_at_partial_; }
  uint64_t partial_record_offset() const { return stream_offset_; }

 private:
  // Makes `size` bytes available from read_pos_; false at a clean end of stream when size bytes
  // cannot be had and none are buffered.
  bool fill(size_t size);

  int fd_;
  std::vector<std::byte> buffer_;
  size_t read_pos_ = 0;
  size_t end_pos_ = 0;
  uint64_t stream_offset_;  // file offset of buffer_[read_pos_]
  bool eof_ = false;
  bool stopped_at_partial_ = false;
};

// The one zstd stream that all COMPRESSED records of a file form. Decoded records may straddle two
// payloads; the tail of one is kept until the next payload completes it.
class DecompressedRecordSource {
 public:
  DecompressedRecordSource();
  ~DecompressedRecordSource();
  DecompressedRecordSource(const DecompressedRecordSource&) = delete;
  DecompressedRecordSource& operator=(const DecompressedRecordSource&) = delete;

  // Decompresses one payload and appends the result; returns the number of bytes produced.
  uint64_t feed(Bytes compressed, uint64_t record_offset);
  bool next(RawRecord& out);
  size_t pending_bytes() const { return end_pos_ - read_pos_; }

 private:
  ZSTD_DCtx_s* context_;
  std::vector<std::byte> buffer_;
  size_t read_pos_ = 0;
  size_t end_pos_ = 0;
  uint64_t current_offset_ = 0;  // offset of the COMPRESSED record that fed the latest bytes
};

}  // namespace lockscope::perf
