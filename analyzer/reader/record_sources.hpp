// Where records come from: an mmapped file, a stream (pipe mode), or the zstd stream inside
// COMPRESSED records. Each hands out one whole record at a time as a view, checked to fit.
// Internal to analyzer/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "lockscope/perf_data.hpp"

struct ZSTD_DCtx_s;

namespace lockscope::perf {

struct RawRecord {
  perf_event_header header{};
  Bytes bytes;               // the whole record, header included
  uint64_t file_offset = 0;  // of the record, or of the COMPRESSED record it came from
  // The bytes lie in a StreamRecordSource's buffer at stream offset file_offset, where
  // StreamRecordSource::keep_from can hold them past the next call (time ordering does).
  bool in_stream_buffer = false;
};

// A read-only mapping of a whole file, for the header, the attrs and the feature sections (the
// records of the data section are read through a buffer: see StreamRecordSource).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  Bytes bytes() const { return {data_, size_}; }

 private:
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// A byte buffer that grows without zero-filling: records are read or decompressed into it, so
// clearing it first is wasted work (and page faults) that small recordings and the fuzzers pay per
// file.
class GrowableBuffer {
 public:
  explicit GrowableBuffer(size_t capacity) : bytes_(new std::byte[capacity]), capacity_(capacity) {}
  std::byte* data() { return bytes_.get(); }
  const std::byte* data() const { return bytes_.get(); }
  size_t capacity() const { return capacity_; }
  // Grows to at least `capacity`, keeping the first `keep` bytes.
  void grow(size_t capacity, size_t keep) {
    if (capacity <= capacity_) return;
    std::unique_ptr<std::byte[]> bigger(new std::byte[capacity]);
    std::memcpy(bigger.get(), bytes_.get(), keep);
    bytes_ = std::move(bigger);
    capacity_ = capacity;
  }

 private:
  std::unique_ptr<std::byte[]> bytes_;
  size_t capacity_;
};

// Records read from a file descriptor: a pipe, or the data section of a file. The buffer holds a
// window of records (and a payload that may trail one), so memory stays bounded. For the data
// section this beats walking the mapping: measured on the 580 MB test recording, reading into a
// reused buffer walks the records in 0.15 s where the mapping takes 0.69 s (and MAP_POPULATE
// windows are no better), page-table and TLB work that a virtual machine makes dear.
//
// Time ordering holds records back until a FINISHED_ROUND: instead of copying each one out, it
// asks the source to keep them (keep_from), and the buffer then keeps everything from the oldest
// held record on, growing when a round does not fit. Memory is bounded by two rounds, as before.
class StreamRecordSource {
 public:
  // limit: how many bytes of the descriptor belong to the records (the data section's size).
  StreamRecordSource(int fd, uint64_t start_offset, uint64_t limit = UINT64_MAX);
  bool next(RawRecord& out);
  Bytes take_trailing_payload(uint64_t size, uint64_t record_offset);
  // Reads exactly `size` bytes at the start of the stream (the pipe header).
  Bytes read_exact(size_t size, std::string_view what);
  // The stream ended inside a record (perf was stopped mid-write).
  bool stopped_at_partial_record() const { return stopped_at_partial_; }
  uint64_t partial_record_offset() const { return stream_offset_; }

  // Keeps the bytes from this stream offset on (a record next() returned) in the buffer until
  // keep_from is called again with a later offset, or keep_nothing.
  void keep_from(uint64_t stream_offset) { kept_offset_ = stream_offset; }
  void keep_nothing() { kept_offset_ = kNothingKept; }
  // A kept record's bytes; valid until the next call that reads (next, take_trailing_payload).
  Bytes kept(uint64_t stream_offset, uint32_t size) const {
    return Bytes(buffer_.data() + (stream_offset - buffer_start_offset()), size);
  }

 private:
  static constexpr uint64_t kNothingKept = UINT64_MAX;
  // Makes `size` bytes available from read_pos_; false at a clean end of stream when size bytes
  // cannot be had and none are buffered. Inline for the usual case, bytes already buffered: next()
  // asks twice per record, and the call was most of its cost.
  bool fill(size_t size) { return end_pos_ - read_pos_ >= size || refill(size); }
  bool refill(size_t size);
  uint64_t buffer_start_offset() const { return stream_offset_ - read_pos_; }

  int fd_;
  GrowableBuffer buffer_;
  size_t read_pos_ = 0;
  size_t end_pos_ = 0;
  uint64_t stream_offset_;  // file offset of buffer_[read_pos_]
  uint64_t unread_limit_;   // bytes of the descriptor still to be read as records
  uint64_t kept_offset_ = kNothingKept;
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
  GrowableBuffer buffer_;
  size_t read_pos_ = 0;
  size_t end_pos_ = 0;
  uint64_t current_offset_ = 0;  // offset of the COMPRESSED record that fed the latest bytes
};

}  // namespace lockscope::perf
