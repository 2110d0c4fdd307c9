#include "record_sources.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "lockscope/error.hpp"
#include "lockscope/unique_fd.hpp"

namespace lockscope::perf {

MappedFile::MappedFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    throw Error(std::string("cannot open: ") + strerror(errno)).file(path);
  }
  struct stat info {};
  if (fstat(fd.get(), &info) != 0) {
    throw Error(std::string("cannot stat: ") + strerror(errno)).file(path);
  }
  if (S_ISDIR(info.st_mode)) {
    // perf record -o DIR --threads writes a directory; lockanalyze reads the single-file format.
    throw Error("is a directory, not a perf.data file").file(path).hint("give the recording's file");
  }
  size_ = static_cast<size_t>(info.st_size);
  if (size_ > 0) {
    void* mapping = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (mapping == MAP_FAILED) {
      throw Error(std::string("cannot mmap: ") + strerror(errno)).file(path);
    }
    data_ = static_cast<const std::byte*>(mapping);
  }
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) munmap(const_cast<std::byte*>(data_), size_);
}

namespace {
// 256 KiB stays in the L2 cache between read() filling it and the records being parsed; measured
// on the 580 MB recording it reads as fast as 1 MiB and faster than 4 MiB.
constexpr size_t kStreamBufferSize = 256u << 10;
// The largest record (its u16 size); a full buffer grows by at least this much.
constexpr size_t kLargestRecord = 64u << 10;

// A data section (or a regular file given as a stream) smaller than the usual buffer gets a buffer
// of its own size: small inputs, the fuzzers' among them, then pay for no more than they hold.
size_t initial_buffer_size(int fd, uint64_t start_offset, uint64_t limit) {
  uint64_t size = std::min<uint64_t>(kStreamBufferSize, limit);
  struct stat file {};
  if (fstat(fd, &file) == 0 && S_ISREG(file.st_mode)) {
    uint64_t file_size = static_cast<uint64_t>(file.st_size);
    size = std::min<uint64_t>(size, file_size > start_offset ? file_size - start_offset : 0);
  }
  return static_cast<size_t>(std::max<uint64_t>(size, 4096));
}
}  // namespace

StreamRecordSource::StreamRecordSource(int fd, uint64_t start_offset, uint64_t limit)
    : fd_(fd),
      buffer_(initial_buffer_size(fd, start_offset, limit)),
      stream_offset_(start_offset),
      unread_limit_(limit) {}

bool StreamRecordSource::refill(size_t size) {
  size_t buffered = end_pos_ - read_pos_;
  // A size the rest of the descriptor cannot hold (a hostile length in file mode) is neither
  // waited nor allocated for.
  if (size - buffered > unread_limit_) return false;
  // Move the unread tail, and any kept records before it, to the front.
  size_t keep_pos = read_pos_;
  if (kept_offset_ != kNothingKept && kept_offset_ >= buffer_start_offset()) {
    keep_pos = std::min<size_t>(read_pos_, static_cast<size_t>(kept_offset_ - buffer_start_offset()));
  }
  if (keep_pos > 0) {
    std::memmove(buffer_.data(), buffer_.data() + keep_pos, end_pos_ - keep_pos);
    end_pos_ -= keep_pos;
    read_pos_ -= keep_pos;
  }
  // Kept records must not starve the reads: when they fill most of the buffer, it doubles.
  if (buffer_.capacity() - end_pos_ < buffer_.capacity() / 4) {
    buffer_.grow(2 * buffer_.capacity(), end_pos_);
  }
  while (end_pos_ - read_pos_ < size && !eof_) {
    if (end_pos_ == buffer_.capacity()) {
      // Grow with the bytes that actually arrive, never to a claimed size up front: a pipe that
      // promises a 4 GiB payload and ends early costs no more memory than it sent. (The buffer is
      // full and short of the record, so read_pos_ + size exceeds its capacity.)
      buffer_.grow(std::min(read_pos_ + size, std::max(buffer_.capacity() * 2, kLargestRecord)), end_pos_);
    }
    size_t want = static_cast<size_t>(std::min<uint64_t>(buffer_.capacity() - end_pos_, unread_limit_));
    if (want == 0) {
      eof_ = true;
      break;
    }
    ssize_t got = ::read(fd_, buffer_.data() + end_pos_, want);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw Error(std::string("read failed: ") + strerror(errno)).at(buffer_start_offset() + end_pos_);
    }
    if (got == 0) eof_ = true;
    end_pos_ += static_cast<size_t>(got);
    unread_limit_ -= static_cast<uint64_t>(got);
  }
  return end_pos_ - read_pos_ >= size;
}

Bytes StreamRecordSource::read_exact(size_t size, std::string_view what) {
  if (!fill(size)) {
    throw Error("the stream ends after " + std::to_string(end_pos_ - read_pos_) + " bytes, expected " +
                std::to_string(size) + " for " + std::string(what))
        .at(stream_offset_)
        .hint("is this the output of `perf record -o -`?");
  }
  Bytes out(buffer_.data() + read_pos_, size);
  read_pos_ += size;
  stream_offset_ += size;
  return out;
}

bool StreamRecordSource::next(RawRecord& out) {
  if (!fill(sizeof(perf_event_header))) {
    // A clean end between records, or perf stopped mid-write: keep what was read.
    stopped_at_partial_ = end_pos_ != read_pos_;
    return false;
  }
  std::memcpy(&out.header, buffer_.data() + read_pos_, sizeof out.header);
  if (out.header.size < sizeof(perf_event_header)) {
    throw Error("record size " + std::to_string(out.header.size) + " is smaller than its header (type " +
                std::to_string(out.header.type) + ")")
        .at(stream_offset_)
        .hint("the stream is corrupt");
  }
  if (!fill(out.header.size)) {
    stopped_at_partial_ = true;
    return false;
  }
  // The view stays valid until the next call: fill() only moves data on the next call.
  out.bytes = Bytes(buffer_.data() + read_pos_, out.header.size);
  out.file_offset = stream_offset_;
  out.in_stream_buffer = true;
  read_pos_ += out.header.size;
  stream_offset_ += out.header.size;
  return true;
}

Bytes StreamRecordSource::take_trailing_payload(uint64_t size, uint64_t record_offset) {
  // The trailing payload comes right after the record; keep the record's bytes valid by not
  // compacting over them: read_exact may move data, so callers copy what they need first.
  constexpr uint64_t kLargestPayload = 1ull << 32;
  if (size > kLargestPayload) {
    throw Error("the payload following this record claims " + std::to_string(size) + " bytes")
        .at(record_offset)
        .hint("the stream is corrupt");
  }
  return read_exact(static_cast<size_t>(size), "the payload that follows a record");
}

namespace {

struct FreeDecompressionContext {
  void operator()(ZSTD_DCtx* context) const { ZSTD_freeDCtx(context); }
};
using DecompressionContext = std::unique_ptr<ZSTD_DCtx, FreeDecompressionContext>;

// The context of the reader that finished last on this thread, kept for the next: a context
// allocates its window buffers (512 KiB at perf's default level) on first use, and a process that
// reads many recordings (the tests, the fuzzers: one per input) then allocates them once.
thread_local DecompressionContext spare_context;

ZSTD_DCtx* take_context() {
  if (spare_context) {
    ZSTD_DCtx_reset(spare_context.get(), ZSTD_reset_session_and_parameters);
    return spare_context.release();
  }
  return ZSTD_createDCtx();
}

}  // namespace

// The buffer starts with room for one largest record and a half and doubles when a payload decodes
// to more (once or twice per recording). Starting under 128 KiB matters to the fuzzer: ASan maps
// and unmaps every larger block, and the TLB shootdown of that unmap made a third of each run.
DecompressedRecordSource::DecompressedRecordSource() : context_(take_context()), buffer_(96 << 10) {
  if (context_ == nullptr) throw Error("cannot allocate a zstd decompression context");
}

DecompressedRecordSource::~DecompressedRecordSource() {
  DecompressionContext context(context_);
  if (!spare_context) spare_context = std::move(context);
}

uint64_t DecompressedRecordSource::feed(Bytes compressed, uint64_t record_offset) {
  if (read_pos_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + read_pos_, end_pos_ - read_pos_);
    end_pos_ -= read_pos_;
    read_pos_ = 0;
  }
  current_offset_ = record_offset;
  ZSTD_inBuffer input{compressed.data(), compressed.size(), 0};
  // Records are at most 64 KiB, so pending bytes beyond a generous limit mean garbage (or a
  // decompression bomb); stop before the buffer grows without bound.
  constexpr size_t kMaxPending = 256u << 20;
  uint64_t produced = 0;
  // zstd decodes a block into its own window when the output has less room than the block, and
  // returns once the input is consumed with part of that block still inside. So a full output
  // means "call again", even with no input left; stopping there lost the stream's last records.
  bool output_was_full = false;
  while (input.pos < input.size || output_was_full) {
    if (end_pos_ > kMaxPending) {
      throw Error("a compressed payload decodes to more than 256 MiB of pending records")
          .at(record_offset)
          .in("PERF_RECORD_COMPRESSED")
          .hint("the compressed data is corrupt");
    }
    if (buffer_.capacity() - end_pos_ < kLargestRecord) buffer_.grow(buffer_.capacity() * 2, end_pos_);
    ZSTD_outBuffer output{buffer_.data() + end_pos_, buffer_.capacity() - end_pos_, 0};
    size_t result = ZSTD_decompressStream(context_, &output, &input);
    if (ZSTD_isError(result)) {
      throw Error(std::string("zstd cannot decompress this payload: ") + ZSTD_getErrorName(result))
          .at(record_offset)
          .in("PERF_RECORD_COMPRESSED")
          .hint("the compressed data is corrupt");
    }
    end_pos_ += output.pos;
    produced += output.pos;
    output_was_full = output.pos == output.size;
  }
  return produced;
}

bool DecompressedRecordSource::next(RawRecord& out) {
  size_t available = end_pos_ - read_pos_;
  if (available < sizeof(perf_event_header)) return false;
  std::memcpy(&out.header, buffer_.data() + read_pos_, sizeof out.header);
  if (out.header.size < sizeof(perf_event_header)) {
    throw Error("a decompressed record has size " + std::to_string(out.header.size) + ", smaller than its header")
        .at(current_offset_)
        .in("PERF_RECORD_COMPRESSED")
        .hint("the compressed data is corrupt");
  }
  if (out.header.size > available) return false;  // completed by the next payload
  out.bytes = Bytes(buffer_.data() + read_pos_, out.header.size);
  out.file_offset = current_offset_;
  out.in_stream_buffer = false;
  read_pos_ += out.header.size;
  return true;
}

}  // namespace lockscope::perf
