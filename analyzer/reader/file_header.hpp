// The head of a perf.data file: the magic, the file header, the attrs section with its ids, and
// the table of feature sections after the data. Internal to analyzer/.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "event_table.hpp"
#include "lockscope/perf_data.hpp"

namespace lockscope::perf {

constexpr size_t kFileHeaderSize = 104;
constexpr size_t kPipeHeaderSize = 16;

// Throws Error naming what the magic says the file is, unless it is PERFILE2 of this byte order.
void check_magic(uint64_t magic, uint64_t offset);

struct FileHeader {
  uint64_t header_size = 0;  // kPipeHeaderSize: a pipe-mode stream saved to a file; nothing else is read
  uint64_t attr_size = 0;    // of one attrs section entry: the attr, then its ids section
  uint64_t attrs_offset = 0, attrs_size = 0;
  uint64_t data_offset = 0, data_size = 0;
  std::array<uint64_t, 4> feature_bits{};  // which feature sections follow the data
};

// Reads the file header of a mapped file and checks that its sections lie inside the file. A
// data section that runs past the end is not an error here: see data_section_bounds.
FileHeader read_file_header(Bytes file);

// The data section as far as the file holds it, in `metadata` (data_offset, data_size, and the
// flags that say the header was not trustworthy), with a line in `damage` when it is cut.
void data_section_bounds(const FileHeader& header, Bytes file, Metadata& metadata, std::vector<std::string>& damage);

// The attrs section: one event per entry, with its ids, added to `events`.
void read_attrs_section(const FileHeader& header, Bytes file, EventTable& events);

// The feature sections whose bits the header sets; a section that runs past the end of the file
// (a file cut short) is skipped with a line in `damage`.
void read_feature_sections(const FileHeader& header, Bytes file, Metadata& metadata, EventTable& events,
                           std::vector<std::string>& damage);

}  // namespace lockscope::perf
