#include "time_order.hpp"

#include <algorithm>

namespace lockscope::perf {

void TimeOrderQueue::push(const RawRecord& record, uint64_t time) {
  if (flushed_any_ && time < flushed_up_to_) ++out_of_order_;
  // Appended in sequence order, the entries stay sorted while times do not go back; an older
  // time starts a new run.
  if (!entries_.empty() && time < entries_.back().time) run_starts_.push_back(entries_.size());
  // Filled in place: an Entry built aside and copied in cost store-forwarding stalls (a third of
  // push's time).
  Entry& entry = entries_.emplace_back();
  entry.time = time;
  entry.sequence = sequence_++;
  entry.file_offset = record.file_offset;
  entry.size = static_cast<uint32_t>(record.bytes.size());
  if (record.in_stream_buffer && window_ != nullptr) {
    entry.location = record.file_offset;
    entry.in_arena = false;
    if (!window_holds_any_) window_->keep_from(record.file_offset);
    window_holds_any_ = true;
  } else {
    entry.location = arena_.size();
    entry.in_arena = true;
    arena_.insert(arena_.end(), record.bytes.begin(), record.bytes.end());
  }
  max_time_ = std::max(max_time_, time);
}

void TimeOrderQueue::sort_entries() {
  // Many rounds arrive already in order (one CPU's buffer): nothing to do for them.
  if (run_starts_.empty()) return;
  merge_runs();
}

// Merges neighbouring runs in pairs until one is left, between entries_ and spare_entries_. Each
// run's entries are in sequence order and an earlier run's sequences are all lower, so a merge
// that takes from the earlier run on equal times keeps (time, sequence) order: records with equal
// times stay in file order, as the sort they replace left them.
void TimeOrderQueue::merge_runs() {
  auto earlier = [](const Entry& a, const Entry& b) {
    return a.time != b.time ? a.time < b.time : a.sequence < b.sequence;
  };
  run_starts_.push_back(entries_.size());  // the end of the last run, as one more start
  while (run_starts_.size() > 1) {
    spare_entries_.resize(entries_.size());
    spare_run_starts_.clear();
    size_t begin = 0;
    for (size_t run = 0; run < run_starts_.size(); run += 2) {
      size_t middle = run_starts_[run];
      size_t end = run + 1 < run_starts_.size() ? run_starts_[run + 1] : middle;
      std::merge(entries_.begin() + static_cast<ptrdiff_t>(begin), entries_.begin() + static_cast<ptrdiff_t>(middle),
                 entries_.begin() + static_cast<ptrdiff_t>(middle), entries_.begin() + static_cast<ptrdiff_t>(end),
                 spare_entries_.begin() + static_cast<ptrdiff_t>(begin), earlier);
      spare_run_starts_.push_back(end);
      begin = end;
    }
    std::swap(entries_, spare_entries_);
    std::swap(run_starts_, spare_run_starts_);
  }
  run_starts_.clear();
}

void TimeOrderQueue::drop_flushed(size_t flushed) {
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<ptrdiff_t>(flushed));
  keep_unflushed();
}

// The window keeps its records from the oldest unflushed one on; arena records still held move to
// the front of a fresh arena.
void TimeOrderQueue::keep_unflushed() {
  uint64_t oldest_in_window = UINT64_MAX;
  spare_.clear();
  for (Entry& entry : entries_) {
    if (!entry.in_arena) {
      oldest_in_window = std::min(oldest_in_window, entry.location);
      continue;
    }
    const std::byte* bytes = arena_.data() + entry.location;
    entry.location = spare_.size();
    spare_.insert(spare_.end(), bytes, bytes + entry.size);
  }
  std::swap(arena_, spare_);
  window_holds_any_ = oldest_in_window != UINT64_MAX;
  if (window_ == nullptr) return;
  if (window_holds_any_) {
    window_->keep_from(oldest_in_window);
  } else {
    window_->keep_nothing();
  }
}

}  // namespace lockscope::perf
