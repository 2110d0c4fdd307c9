// Time ordering of records, as `perf script` shows them: records are held back until a
// FINISHED_ROUND proves that nothing older can still come (perf's own rule: flush up to the newest
// time of the previous round), then sorted by time. Memory stays bounded by two rounds. Internal
// to analyzer/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "record_sources.hpp"

namespace lockscope::perf {

// Records held back for time ordering, put in time order at each flush. Records in a
// StreamRecordSource's buffer stay there (the source keeps them: no copy); others (decompressed
// ones) are copied into an arena.
//
// The entries arrive as a few runs already in time order: what a round left over (sorted), then
// each CPU's ring buffer in turn. push() notes where each run starts, and a flush merges the runs
// instead of sorting: on the shared recording the sort was most of the queue's time.
class TimeOrderQueue {
 public:
  // The source whose buffered records are held in place (the data section or the pipe).
  void use_window(StreamRecordSource* window) { window_ = window; }

  void push(const RawRecord& record, uint64_t time);

  // perf's rule: at a FINISHED_ROUND everything up to the newest time seen at the previous round
  // is final. Returns the limit to flush up to.
  uint64_t round_limit() {
    uint64_t limit = previous_round_max_;
    previous_round_max_ = max_time_;
    return limit;
  }

  // Calls emit(RawRecord) for entries with time <= limit in time order, keeps the rest.
  template <typename Emit>
  void flush(uint64_t limit, Emit&& emit) {
    sort_entries();
    size_t flushed = 0;
    RawRecord record;
    while (flushed < entries_.size() && entries_[flushed].time <= limit) {
      const Entry& entry = entries_[flushed];
      record.bytes = entry.in_arena ? Bytes(arena_.data() + entry.location, entry.size)
                                    : window_->kept(entry.location, entry.size);
      std::memcpy(&record.header, record.bytes.data(), sizeof record.header);
      record.file_offset = entry.file_offset;
      emit(record);
      flushed_up_to_ = entry.time;
      flushed_any_ = true;
      ++flushed;
    }
    drop_flushed(flushed);
  }

  // Records older than what was already flushed (perf's "out of order" count).
  uint64_t out_of_order() const { return out_of_order_; }

 private:
  struct Entry {
    uint64_t time;
    uint64_t sequence;
    uint64_t location;  // stream offset in the window, or offset in the arena
    uint64_t file_offset;
    uint32_t size;
    bool in_arena;
  };

  void sort_entries();
  void merge_runs();
  void drop_flushed(size_t flushed);
  void keep_unflushed();

  StreamRecordSource* window_ = nullptr;
  bool window_holds_any_ = false;
  std::vector<std::byte> arena_, spare_;
  std::vector<Entry> entries_;
  // Where each run of entries in time order starts, after the first (which starts at 0); empty
  // when all entries are in order. Reused, as merge_runs' spare entries: no allocation per round.
  std::vector<size_t> run_starts_, spare_run_starts_;
  std::vector<Entry> spare_entries_;
  uint64_t sequence_ = 0;
  uint64_t max_time_ = 0;
  uint64_t previous_round_max_ = 0;
  uint64_t flushed_up_to_ = 0;
  bool flushed_any_ = false;
  uint64_t out_of_order_ = 0;
};

}  // namespace lockscope::perf
