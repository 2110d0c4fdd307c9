// libFuzzer target for the perf.data reader and everything behind it (tracing data through
// libtraceevent, lock event decoding, zstd records). The input is read as a file (mmapped) and as
// a pipe-mode stream; anything but lockscope::Error escaping, or a sanitizer report, is a bug.
#include <cstddef>
#include <cstdint>
#include <sys/mman.h>
#include <unistd.h>

#include "lockscope/error.hpp"
#include "lockscope/lock_events.hpp"
#include "lockscope/perf_data.hpp"

namespace {

class DecodeEverything final : public lockscope::perf::RecordVisitor {
 public:
  void on_metadata(const lockscope::perf::Metadata& metadata) override {
    decoder_ = std::make_unique<lockscope::LockEventDecoder>(metadata);
  }
  void on_sample(const lockscope::perf::Sample& sample) override {
    if (decoder_ && decoder_->decode(sample)) ++events_;
    lockscope::perf::for_each_frame(sample.callchain,
                                    [this](uint64_t address, auto) { checksum_ ^= address; });
  }
  void on_comm(const lockscope::perf::CommRecord& comm) override { checksum_ ^= comm.comm.size(); }

 private:
  std::unique_ptr<lockscope::LockEventDecoder> decoder_;
  uint64_t events_ = 0;
  uint64_t checksum_ = 0;
};

int memory_file(const uint8_t* data, size_t size) {
  int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
  if (fd < 0) abort();
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) abort();
    done += static_cast<size_t>(n);
  }
  lseek(fd, 0, SEEK_SET);
  return fd;
}

void read_as(bool pipe_mode, const uint8_t* data, size_t size) {
  int fd = memory_file(data, size);
  try {
    std::unique_ptr<lockscope::perf::PerfDataReader> reader;
    if (pipe_mode) {
      reader = lockscope::perf::PerfDataReader::open_stream(fd, "fuzz");
    } else {
      reader = lockscope::perf::PerfDataReader::open("/proc/self/fd/" + std::to_string(fd));
    }
    DecodeEverything visitor;
    reader->read(visitor, size % 2 ? lockscope::perf::RecordOrder::time
                                   : lockscope::perf::RecordOrder::file);
  } catch (const lockscope::Error&) {
    // Expected for malformed input: one clear error.
  }
  close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  read_as(false, data, size);
  read_as(true, data, size);
  return 0;
}
