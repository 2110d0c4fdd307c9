// What every perf.data fuzz target shares: the input as a file descriptor, and a visitor that does
// what the commands do with records (decode samples into lock events, walk callchains, read the
// names), so the fuzzer reaches the same code a hostile recording would.
#pragma once

#include <sys/mman.h>
#include <unistd.h>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "lockscope/error.hpp"
#include "lockscope/lock_events.hpp"
#include "lockscope/perf_data.hpp"

namespace lockscope::fuzz {

class DecodeEverything final : public perf::RecordVisitor {
 public:
  void on_metadata(const perf::Metadata& metadata) override { decoder_ = std::make_unique<LockEventDecoder>(metadata); }
  void on_sample(const perf::Sample& sample) override {
    if (decoder_) {
      if (const LockEvent* event = decoder_->decode(sample)) {
        checksum_ ^= event->lock.value_or(0) ^ static_cast<uint64_t>(event->ret.value_or(0));
        checksum_ ^= event->event_name.size();
      }
      checksum_ ^= decoder_->event_name(sample.event->index).size();
    }
    perf::for_each_frame(sample.callchain, [this](uint64_t address, auto) { checksum_ ^= address; });
    for (std::byte b : sample.raw) checksum_ += static_cast<uint64_t>(b);
  }
  void on_comm(const perf::CommRecord& comm) override { checksum_ ^= comm.comm.size(); }
  void on_mmap(const perf::MmapRecord& map) override { checksum_ ^= map.filename.size(); }
  uint64_t checksum() const { return checksum_; }

 private:
  std::unique_ptr<LockEventDecoder> decoder_;
  uint64_t checksum_ = 0;
};

// The input as an anonymous in-memory file, readable by path (/proc/self/fd/N) and by descriptor.
class MemoryFile {
 public:
  MemoryFile(const uint8_t* data, size_t size) : fd_(memfd_create("fuzz-input", MFD_CLOEXEC)) {
    if (fd_ < 0) abort();
    size_t done = 0;
    while (done < size) {
      ssize_t n = write(fd_, data + done, size - done);
      if (n <= 0) abort();
      done += static_cast<size_t>(n);
    }
    lseek(fd_, 0, SEEK_SET);
  }
  ~MemoryFile() { close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  int fd() const { return fd_; }
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

// Reads every record; malformed input must end in lockscope::Error and nothing else. The record
// order alternates with the input's size so both orders are fuzzed.
inline void read_everything(perf::PerfDataReader& reader, size_t input_size) {
  DecodeEverything visitor;
  reader.read(visitor, input_size % 2 ? perf::RecordOrder::time : perf::RecordOrder::file);
  // The summary the commands print reads these after the records.
  for (const auto& warning : reader.stats().warnings) (void)warning.size();
}

}  // namespace lockscope::fuzz
