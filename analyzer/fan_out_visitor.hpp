// One read of a recording for several readers: every record goes to each visitor in turn (the
// holder model, the lockdep replay, the contention feed). Internal to analyzer/.
#pragma once

#include <algorithm>
#include <vector>

#include "lockscope/perf_data.hpp"

namespace lockscope {

class FanOutVisitor final : public perf::RecordVisitor {
 public:
  // Null visitors (an optional reader that is not there) are left out.
  explicit FanOutVisitor(std::vector<perf::RecordVisitor*> visitors) : visitors_(std::move(visitors)) {
    std::erase(visitors_, nullptr);
  }
  void on_metadata(const perf::Metadata& m) override { each([&](auto& v) { v.on_metadata(m); }); }
  void on_sample(const perf::Sample& s) override { each([&](auto& v) { v.on_sample(s); }); }
  void on_comm(const perf::CommRecord& r) override { each([&](auto& v) { v.on_comm(r); }); }
  void on_fork(const perf::TaskRecord& r) override { each([&](auto& v) { v.on_fork(r); }); }
  void on_exit(const perf::TaskRecord& r) override { each([&](auto& v) { v.on_exit(r); }); }
  void on_mmap(const perf::MmapRecord& r) override { each([&](auto& v) { v.on_mmap(r); }); }
  void on_lost(const perf::LostRecord& r) override { each([&](auto& v) { v.on_lost(r); }); }
  void on_lost_samples(uint64_t lost, const perf::SampleId& id) override {
    each([&](auto& v) { v.on_lost_samples(lost, id); });
  }
  void on_throttle(const perf::ThrottleRecord& r) override { each([&](auto& v) { v.on_throttle(r); }); }

 private:
  template <typename Call>
  void each(Call&& call) {
    for (perf::RecordVisitor* visitor : visitors_) call(*visitor);
  }
  std::vector<perf::RecordVisitor*> visitors_;
};

}  // namespace lockscope
