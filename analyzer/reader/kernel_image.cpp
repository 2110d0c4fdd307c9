// Where the recorded kernel was and which build it was: one place for every command to find the
// kernel map and the kernel's build-id.
#include "lockscope/perf_data.hpp"

namespace lockscope::perf {

std::optional<uint64_t> kernel_text_of_map(const MmapRecord& map) {
  if (!map.kernel || !map.filename.starts_with("[kernel.kallsyms]") || map.pgoff == 0) return std::nullopt;
  return map.pgoff;
}

KernelImageInfo kernel_image_info(const Metadata& metadata, std::optional<uint64_t> runtime_text) {
  KernelImageInfo info;
  info.has_text_address = runtime_text.has_value();
  info.text_address = runtime_text.value_or(0);
  info.os_release = metadata.os_release;
  for (const auto& entry : metadata.build_ids) {
    if (entry.filename == "[kernel.kallsyms]") info.build_id_hex = entry.build_id_hex;
  }
  return info;
}

KernelImageInfo read_kernel_image_info(const std::string& path, const std::string& display_name) {
  // perf writes the kernel map among the first records: stop there.
  class KernelMapFinder final : public RecordVisitor {
   public:
    void on_mmap(const MmapRecord& map) override {
      if (map.kernel && map.filename.starts_with("[kernel.kallsyms]")) {
        found = true;
        text = kernel_text_of_map(map);
      }
    }
    bool wants_more() const override { return !found; }
    bool found = false;
    std::optional<uint64_t> text;
  };
  auto reader = PerfDataReader::open(path, display_name);
  KernelMapFinder finder;
  reader->read(finder);
  return kernel_image_info(reader->metadata(), finder.text);
}

}  // namespace lockscope::perf
