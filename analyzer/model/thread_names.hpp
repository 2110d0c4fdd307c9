// The comm of each thread as perf keeps it, shared by the events command and the holder model.
// Internal to analyzer/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace lockscope {

// The comm each thread has at this point of the recording, the way perf keeps it: COMM records
// set it, a forked thread starts with its parent's, the idle task (0) is "swapper" until told
// otherwise, and an unknown thread reads ":TID".
class ThreadNames {
 public:
  ThreadNames() { names_[0] = "swapper"; }
  void set(uint32_t tid, std::string_view comm) { names_[tid].assign(comm); }
  void fork(uint32_t child, uint32_t parent) {
    auto found = names_.find(parent);
    if (found != names_.end()) {
      names_[child] = found->second;
    } else {
      names_.erase(child);
    }
  }
  // The comm, or nothing when no record named the thread.
  const std::string* find(uint32_t tid) const {
    auto found = names_.find(tid);
    return found == names_.end() ? nullptr : &found->second;
  }
  std::string_view get(uint32_t tid) {
    auto found = names_.find(tid);
    if (found != names_.end()) return found->second;
    // Assigned, then appended: GCC 12 warns falsely on ":" + std::string (-Wrestrict, bug 105329).
    unknown_ = ':';
    unknown_ += std::to_string(static_cast<int32_t>(tid));
    return unknown_;
  }

 private:
  std::unordered_map<uint32_t, std::string> names_;
  std::string unknown_;
};

}  // namespace lockscope
