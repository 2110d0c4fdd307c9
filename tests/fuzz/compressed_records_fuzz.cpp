// libFuzzer target for the zstd record path (COMPRESSED and COMPRESSED2 records). Fuzzing the
// compressed bytes themselves would mostly exercise zstd's own error paths, so the input is the
// *decompressed* record stream: the target compresses it the way perf does (one zstd stream,
// flushed per record, cut every `chunk` bytes so records straddle payloads) behind the metadata of
// a small lock recording, and reads the result in pipe mode. One control byte picks the chunk
// size, the record type and a raw mode where the bytes are used as (corrupt) payloads unchanged.
#include <zstd.h>
#include <vector>

#include "example_recordings.hpp"
#include "fuzz_support.hpp"

namespace {

using lockscope::testing::ByteVector;
using lockscope::testing::ByteWriter;

constexpr uint32_t kCompressed = 81, kCompressed2 = 83;
constexpr uint8_t kCompressed2Bit = 0x40, kRawPayloadBit = 0x80;
constexpr int kSmallestWindowLog = 10;  // ZSTD_WINDOWLOG_MIN, which zstd.h hides behind ZSTD_STATIC_LINKING_ONLY

// Pipe-mode metadata (features, attrs, tracing data, FINISHED_INIT) with no records.
const ByteVector& metadata_prefix() {
  static const ByteVector prefix = [] {
    lockscope::testing::PerfDataBuilder builder;
    builder.set_tracing_data(lockscope::testing::example_tracing_data());
    builder.add_event(
        lockscope::testing::tracepoint_attr(lockscope::testing::kSpinLockId, lockscope::testing::kLockSampleType),
        "probe:_raw_spin_lock", {11, 12});
    builder.add_event(
        lockscope::testing::tracepoint_attr(lockscope::testing::kBeginId, lockscope::testing::kLockSampleType),
        "lock:contention_begin", {15});
    return builder.pipe_mode();
  }();
  return prefix;
}

void put_compressed_record(ByteWriter& out, uint32_t type, const std::byte* payload, size_t size) {
  if (type == kCompressed2) {
    size_t padded = (size + 7) / 8 * 8;
    out.put(perf_event_header{type, 0, static_cast<uint16_t>(16 + padded)});
    out.put<uint64_t>(size);
    out.put_bytes(payload, size);
    for (size_t i = size; i < padded; ++i) out.put<uint8_t>(0);
  } else {
    out.put(perf_event_header{type, 0, static_cast<uint16_t>(8 + size)});
    out.put_bytes(payload, size);
  }
}

// Compresses `records` as perf does: one stream, flushed (never ended) after each chunk.
void compress_into(ByteWriter& out, uint32_t type, const uint8_t* records, size_t size, size_t chunk) {
  static ZSTD_CCtx* context = [] {
    ZSTD_CCtx* created = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(created, ZSTD_c_compressionLevel, 1);
    // The smallest window zstd allows (1 KiB): the decompressor then allocates ~1 KiB per stream
    // rather than perf's 512 KiB, which under ASan cost an mmap, a shadow poisoning and page
    // faults in every execution (190 exec/s); and records straddle window boundaries often.
    ZSTD_CCtx_setParameter(created, ZSTD_c_windowLog, kSmallestWindowLog);
    return created;
  }();
  ZSTD_CCtx_reset(context, ZSTD_reset_session_only);
  static std::vector<std::byte> buffer(ZSTD_compressBound(4096) + 64);
  for (size_t start = 0; start < size; start += chunk) {
    ZSTD_inBuffer input{records + start, std::min(chunk, size - start), 0};
    ZSTD_outBuffer output{buffer.data(), buffer.size(), 0};
    size_t remaining = ZSTD_compressStream2(context, &output, &input, ZSTD_e_flush);
    if (ZSTD_isError(remaining) || remaining != 0) abort();  // the buffer fits a whole chunk
    put_compressed_record(out, type, buffer.data(), output.pos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t control = data[0];
  const uint8_t* records = data + 1;
  size_t records_size = size - 1;
  size_t chunk = 16 + (control & 0x3f) * 63u;  // 16 .. 3985 bytes
  uint32_t type = (control & kCompressed2Bit) ? kCompressed2 : kCompressed;

  ByteWriter stream;
  stream.put_bytes(metadata_prefix());
  if (control & kRawPayloadBit) {
    for (size_t start = 0; start < records_size; start += chunk) {
      put_compressed_record(stream, type, reinterpret_cast<const std::byte*>(records + start),
                            std::min(chunk, records_size - start));
    }
  } else {
    compress_into(stream, type, records, records_size, chunk);
  }

  lockscope::fuzz::MemoryFile input(reinterpret_cast<const uint8_t*>(stream.bytes.data()), stream.bytes.size());
  try {
    auto reader = lockscope::perf::PerfDataReader::open_stream(input.fd(), "fuzz-zstd");
    lockscope::fuzz::read_everything(*reader, size);
  } catch (const lockscope::Error&) {
    // Malformed input: one clear error is the right answer.
  }
  return 0;
}
