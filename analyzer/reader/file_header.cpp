#include "file_header.hpp"

#include <algorithm>
#include <bit>

#include "byte_cursor.hpp"
#include "feature_sections.hpp"
#include "lockscope/error.hpp"

namespace lockscope::perf {
namespace {

constexpr uint64_t kMagic = 0x32454c4946524550ull;          // "PERFILE2"
constexpr uint64_t kMagicSwapped = 0x50455246494c4532ull;   // written on the other endianness
constexpr uint64_t kMagicVersion1 = 0x454c494646524550ull;  // "PERFFILE"
constexpr uint32_t kAttrSizeVer0 = 64;                      // PERF_ATTR_SIZE_VER0: the smallest attr perf ever wrote
constexpr size_t kFeatureBits = 256;

// Throws unless [offset, +size) lies inside the file; `where` is the header field that says so.
void check_section(Bytes file, uint64_t offset, uint64_t size, std::string_view what, uint64_t where) {
  if (offset > file.size() || size > file.size() - offset) {
    throw Error(std::string(what) + " [" + std::to_string(offset) + ", +" + std::to_string(size) +
                ") lies outside the file (" + std::to_string(file.size()) + " bytes)")
        .at(where)
        .in("file header")
        .hint("the file is truncated or corrupt");
  }
}

}  // namespace

void check_magic(uint64_t magic, uint64_t offset) {
  if (magic == kMagic) return;
  if (magic == kMagicSwapped) {
    throw Error("this perf.data was written on a machine of the other byte order")
        .at(offset)
        .hint("run `perf script` on a machine of that byte order, or re-record here");
  }
  if (magic == kMagicVersion1) {
    throw Error("this is perf.data version 1 (PERFFILE), which perf stopped writing in 2010")
        .at(offset)
        .hint("re-record with a current perf");
  }
  throw Error("not a perf.data file (no PERFILE2 magic)").at(offset).hint("give the output of `perf record`");
}

FileHeader read_file_header(Bytes file) {
  FileHeader out;
  ByteCursor header(file, 0, "file header");
  header.require(8, "the magic");
  check_magic(load<uint64_t>(file.data()), 0);
  header.skip(8, "the magic");
  out.header_size = header.u64();
  if (out.header_size == kPipeHeaderSize) {
    if (file.size() < kPipeHeaderSize) throw Error("pipe header cut short").at(0).hint("the file is truncated");
    return out;
  }
  if (out.header_size != kFileHeaderSize) {
    throw Error("header size " + std::to_string(out.header_size) + ", expected 104 (file mode) or " + "16 (pipe mode)")
        .at(8)
        .in("file header")
        .hint("the file is corrupt");
  }
  header.require(kFileHeaderSize - 16, "the file header");
  out.attr_size = header.u64();
  out.attrs_offset = header.u64();
  out.attrs_size = header.u64();
  out.data_offset = header.u64();
  out.data_size = header.u64();
  header.skip(16, "event_types section");
  for (auto& word : out.feature_bits) word = header.u64();

  check_section(file, out.attrs_offset, out.attrs_size, "attrs section", 24);
  if (out.data_offset > file.size()) {
    throw Error("data section starts at " + std::to_string(out.data_offset) + ", past the end of the file (" +
                std::to_string(file.size()) + " bytes)")
        .at(40)
        .in("file header")
        .hint("the file is truncated");
  }
  return out;
}

void data_section_bounds(const FileHeader& header, Bytes file, Metadata& metadata, std::vector<std::string>& damage) {
  uint64_t data_offset = header.data_offset, data_size = header.data_size;
  metadata.data_offset = data_offset;
  if (data_size == 0) {
    metadata.data_size_was_zero = true;
    metadata.data_size = file.size() - data_offset;
    damage.push_back(
        "the header says the data section is empty (perf did not finish: killed, or its disk "
        "filled); "
        "reading records up to the end of the file, without the feature sections");
  } else if (data_size > file.size() - data_offset) {
    // Cut short (a copy that stopped, a full disk): the records up to the cut are still good, and
    // perf script reads them too. The feature sections that followed them are gone.
    metadata.data_cut_short = true;
    metadata.data_size = file.size() - data_offset;
    damage.push_back("the file ends at byte " + std::to_string(file.size()) + ", " +
                     std::to_string(data_size - metadata.data_size) + " bytes before the end of its data section [" +
                     std::to_string(data_offset) + ", +" + std::to_string(data_size) +
                     "): the records up to the cut were read; the rest and the feature sections (event names, "
                     "tracing data, build-ids) are lost");
  } else {
    metadata.data_size = data_size;
  }
}

void read_attrs_section(const FileHeader& header, Bytes file, EventTable& events) {
  uint64_t attr_size = header.attr_size, offset = header.attrs_offset, size = header.attrs_size;
  if (attr_size < kAttrSizeVer0 + 16 || attr_size > 4096) {
    throw Error("attr entry size " + std::to_string(attr_size) + " is implausible (expected " +
                "64 to 4096 bytes plus 16 for the ids section)")
        .at(16)
        .in("file header")
        .hint("the file is corrupt");
  }
  if (size % attr_size != 0) {
    throw Error("attrs section size " + std::to_string(size) + " is not a multiple of the attr entry size " +
                std::to_string(attr_size))
        .at(32)
        .in("file header")
        .hint("the file is corrupt");
  }
  for (uint64_t entry = offset; entry < offset + size; entry += attr_size) {
    Bytes bytes = file.subspan(entry, attr_size);
    uint32_t declared = load<uint32_t>(bytes.data() + 4);
    uint64_t attr_bytes = attr_size - 16;
    if (declared < kAttrSizeVer0 || declared > attr_bytes) {
      throw Error("attr.size " + std::to_string(declared) + " does not fit the attr entry of " +
                  std::to_string(attr_bytes) + " bytes")
          .at(entry + 4)
          .in("attrs section")
          .hint("the file is corrupt");
    }
    EventDesc event;
    event.attr = attr_from_bytes(bytes.first(declared));
    event.attr_size_in_file = declared;
    ByteCursor ids_section(bytes.subspan(attr_bytes), entry + attr_bytes, "attr ids section");
    uint64_t ids_offset = ids_section.u64(), ids_size = ids_section.u64();
    check_section(file, ids_offset, ids_size, "attr ids", entry + attr_bytes);
    if (ids_size % 8 != 0) {
      throw Error("attr ids size " + std::to_string(ids_size) + " is not a multiple of 8")
          .at(entry + attr_bytes + 8)
          .in("attrs section")
          .hint("the file is corrupt");
    }
    for (uint64_t i = 0; i < ids_size / 8; ++i) {
      event.ids.push_back(load<uint64_t>(file.data() + ids_offset + i * 8));
    }
    // Errors about how events fit together point at the attrs section, as they always have.
    events.add(std::move(event), offset);
  }
}

void read_feature_sections(const FileHeader& header, Bytes file, Metadata& metadata, EventTable& events,
                           std::vector<std::string>& damage) {
  const auto& bits = header.feature_bits;
  uint64_t table_offset = header.data_offset + header.data_size;
  uint64_t count = 0;
  for (uint64_t word : bits) count += static_cast<uint64_t>(std::popcount(word));
  Bytes after_data = file.subspan(std::min<uint64_t>(table_offset, file.size()));
  if (count > after_data.size() / 16) {
    damage.push_back("the file ends at byte " + std::to_string(file.size()) + ", inside the table of its " +
                     std::to_string(count) + " feature sections at " + std::to_string(table_offset) +
                     ": no feature section was read (event names, tracing data, "
                     "build-ids are lost); the data section is whole");
    return;
  }
  ByteCursor table(after_data, table_offset, "feature section table");
  for (uint64_t feature = 0; feature < kFeatureBits; ++feature) {
    if (!(bits[feature / 64] >> (feature % 64) & 1)) continue;
    uint64_t offset = table.u64(), size = table.u64();
    // Sections lie after the table, in feature order: a file cut short loses the last ones.
    if (offset > file.size() || size > file.size() - offset) {
      damage.push_back("feature section " + feature_name(feature) + " [" + std::to_string(offset) + ", +" +
                       std::to_string(size) + ") runs past the end of the file (" + std::to_string(file.size()) +
                       " bytes): skipped");
      continue;
    }
    parse_feature_section(feature, file.subspan(offset, size), offset, metadata, events);
  }
}

}  // namespace lockscope::perf
