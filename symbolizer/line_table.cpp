#include "line_table.hpp"

#include <dwarf.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <tuple>

namespace lockscope::symbolizer {

namespace {

// Checked little-endian reads (the x86-64 vmlinux's byte order): every read says whether the bytes
// were there, and a failed one leaves the cursor spent.
class Cursor {
 public:
  Cursor(std::span<const unsigned char> bytes, uint64_t at, uint64_t end) : bytes_(bytes), at_(at), end_(end) {}
  uint64_t at() const { return at_; }
  uint64_t left() const { return at_ <= end_ ? end_ - at_ : 0; }
  bool fixed(size_t width, uint64_t* value) {
    if (left() < width) return fail();
    *value = 0;
    for (size_t i = 0; i < width; ++i) *value |= uint64_t{bytes_[at_ + i]} << (8 * i);
    at_ += width;
    return true;
  }
  bool u8(uint8_t* value) {
    uint64_t wide = 0;
    if (!fixed(1, &wide)) return false;
    *value = static_cast<uint8_t>(wide);
    return true;
  }
  bool skip(uint64_t count) {
    if (left() < count) return fail();
    at_ += count;
    return true;
  }
  // Padded encodings are allowed; bits past 64 are dropped.
  bool uleb(uint64_t* value) {
    *value = 0;
    for (unsigned shift = 0; at_ < end_; shift += 7) {
      const unsigned char byte = bytes_[at_++];
      if (shift < 64) *value |= uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return fail();
  }
  bool sleb(int64_t* value) {
    uint64_t result = 0;
    unsigned shift = 0;
    for (; at_ < end_; shift += 7) {
      const unsigned char byte = bytes_[at_++];
      if (shift < 64) result |= uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) {
        if (shift + 7 < 64 && (byte & 0x40) != 0) result |= ~uint64_t{0} << (shift + 7);
        *value = static_cast<int64_t>(result);
        return true;
      }
    }
    return fail();
  }
  // A NUL-terminated string that ends before `end`.
  bool cstr(const char** value) {
    const auto* begin = bytes_.data() + at_;
    const void* nul = left() > 0 ? std::memchr(begin, 0, left()) : nullptr;
    if (nul == nullptr) return fail();
    *value = reinterpret_cast<const char*>(begin);
    at_ += static_cast<const unsigned char*>(nul) - begin + 1;
    return true;
  }

 private:
  bool fail() {
    at_ = end_;
    return false;
  }
  std::span<const unsigned char> bytes_;
  uint64_t at_, end_;
};

// A NUL-terminated string at `offset` in a string section.
const char* string_at(std::span<const unsigned char> section, uint64_t offset) {
  if (offset >= section.size()) return nullptr;
  const auto* begin = section.data() + offset;
  if (std::memchr(begin, 0, section.size() - offset) == nullptr) return nullptr;
  return reinterpret_cast<const char*>(begin);
}

// One (content type, form) column of DWARF 5's directory and file tables.
struct EntryColumn {
  uint64_t content = 0;
  uint64_t form = 0;
};

// Reads one value of an entry: a string for the path, a number for the directory index, the rest
// (timestamps, sizes, MD5) skipped. False for a form a line table has no business using.
bool read_entry_value(Cursor& in, uint64_t form, size_t offset_size, const LineSections& sections, const char** text,
                      uint64_t* number) {
  *text = nullptr;
  uint64_t value = 0;
  switch (form) {
    case DW_FORM_string: return in.cstr(text);
    case DW_FORM_line_strp:
      if (!in.fixed(offset_size, &value)) return false;
      *text = string_at(sections.line_str, value);
      return *text != nullptr;
    case DW_FORM_strp:
      if (!in.fixed(offset_size, &value)) return false;
      *text = string_at(sections.str, value);
      return *text != nullptr;
    case DW_FORM_data1: return in.fixed(1, number);
    case DW_FORM_data2: return in.fixed(2, number);
    case DW_FORM_data4: return in.fixed(4, number);
    case DW_FORM_data8: return in.fixed(8, number);
    case DW_FORM_udata: return in.uleb(number);
    case DW_FORM_data16: return in.skip(16);
    case DW_FORM_block: return in.uleb(&value) && in.skip(value);
    default: return false;
  }
}

// libdw's spelling of a file: the name when absolute, else its directory, '/', the name; the name
// alone when the directory is unknown (DWARF 4's directory 0 without DW_AT_comp_dir).
std::string file_path(const char* directory, const char* name) {
  if (name[0] == '/' || directory == nullptr) return name;
  std::string path = directory;
  path += '/';
  path += name;
  return path;
}

constexpr uint32_t kRowsPerCheckpoint = 32;

}  // namespace

bool LineTable::Ranked::operator<(const Ranked& other) const {
  return std::tie(address, normal, sequence, ordinal) <
         std::tie(other.address, other.normal, other.sequence, other.ordinal);
}

// Runs the program from `from` with the registers of `state`, calling on_row(state, end_of_sequence,
// offset after the opcode) for each row until it returns false or the program ends. False when the
// program is damaged. DW_LNE_define_file (DWARF 2-4) adds to `defined_files` when given.
template <typename OnRow>
bool LineTable::run(uint64_t from, Checkpoint state, OnRow&& on_row, std::vector<std::string>* defined_files) const {
  Cursor in(line_, from, program_end_);
  auto advance = [&](uint64_t operation_advance) {
    const uint64_t ops = state.op_index + operation_advance;
    state.address += min_instruction_length_ * (ops / max_ops_per_instruction_);
    state.op_index = static_cast<uint32_t>(ops % max_ops_per_instruction_);
  };
  auto row = [&](bool end) {
    // libdw keeps the line as an int and the file as an unsigned int: a table that overflows them
    // is damaged to it, and so here.
    if (state.line < INT_MIN || state.line > INT_MAX) return std::optional<bool>();
    return std::optional<bool>(on_row(state, end, in.at()));
  };
  // A new sequence starts from the registers' initial values.
  auto reset = [&] {
    state = Checkpoint{};
    state.file = 1;
    state.line = 1;
  };
  while (in.left() > 0) {
    uint8_t opcode = 0;
    in.u8(&opcode);
    if (opcode >= opcode_base_) {  // special opcode: advance address and line, make a row
      if (line_range_ == 0) return false;
      const unsigned adjusted = opcode - opcode_base_;
      state.line += line_base_ + static_cast<int>(adjusted % line_range_);
      advance(adjusted / line_range_);
      const std::optional<bool> go_on = row(false);
      if (!go_on) return false;
      if (!*go_on) return true;
      continue;
    }
    uint64_t operand = 0;
    int64_t signed_operand = 0;
    switch (opcode) {
      case 0: {  // extended opcode: length, sub-opcode, operands
        uint64_t length = 0;
        uint8_t sub = 0;
        if (!in.uleb(&length) || length == 0 || in.left() < length || !in.u8(&sub)) return false;
        const uint64_t next = in.at() + length - 1;
        switch (sub) {
          case DW_LNE_end_sequence: {
            const std::optional<bool> go_on = row(true);
            if (!go_on) return false;
            reset();
            if (!*go_on) return true;
            break;
          }
          case DW_LNE_set_address:
            if (length - 1 != address_size_ || !in.fixed(address_size_, &state.address)) return false;
            state.op_index = 0;
            break;
          case DW_LNE_define_file: {
            const char* name = nullptr;
            uint64_t directory = 0, ignored = 0;
            if (!in.cstr(&name) || !in.uleb(&directory) || !in.uleb(&ignored) || !in.uleb(&ignored)) return false;
            if (defined_files != nullptr) {
              if (directory >= directories_.size()) return false;
              defined_files->push_back(file_path(directories_[directory], name));
            }
            break;
          }
          default: break;  // DW_LNE_set_discriminator and the vendors' own: nothing a row needs
        }
        if (in.at() > next) return false;
        in = Cursor(line_, next, program_end_);
        break;
      }
      case DW_LNS_copy: {
        const std::optional<bool> go_on = row(false);
        if (!go_on) return false;
        if (!*go_on) return true;
        break;
      }
      case DW_LNS_advance_pc:
        if (!in.uleb(&operand)) return false;
        advance(operand);
        break;
      case DW_LNS_advance_line:
        if (!in.sleb(&signed_operand)) return false;
        state.line += signed_operand;
        break;
      case DW_LNS_set_file:
        if (!in.uleb(&operand) || operand > UINT32_MAX) return false;
        state.file = static_cast<uint32_t>(operand);
        break;
      case DW_LNS_const_add_pc:
        if (line_range_ == 0) return false;
        advance((255u - opcode_base_) / line_range_);
        break;
      case DW_LNS_fixed_advance_pc:
        if (!in.fixed(2, &operand)) return false;
        state.address += operand;
        state.op_index = 0;
        break;
      default:  // the other standard opcodes set registers no row here needs; skip their operands
        for (uint8_t n = standard_opcode_lengths_[opcode]; n > 0; --n)
          if (!in.uleb(&operand)) return false;
        break;
    }
  }
  return true;
}

std::optional<LineTable> LineTable::read(const LineSections& sections, uint64_t offset, const char* comp_dir,
                                         unsigned address_size) {
  LineTable table;
  table.line_ = sections.line;
  table.address_size_ = address_size;
  if (address_size != 4 && address_size != 8) return std::nullopt;
  // The header: unit length, version, (DWARF 5: address and segment selector sizes), header length,
  // then the fields of section 6.2.4 up to the directory and file tables.
  Cursor in(sections.line, offset, sections.line.size());
  uint64_t unit_length = 0, version = 0, header_length = 0;
  size_t offset_size = 4;
  if (!in.fixed(4, &unit_length)) return std::nullopt;
  if (unit_length == 0xffffffff) {
    offset_size = 8;
    if (!in.fixed(8, &unit_length)) return std::nullopt;
  }
  if (unit_length > in.left()) return std::nullopt;
  table.program_end_ = in.at() + unit_length;
  in = Cursor(sections.line, in.at(), table.program_end_);
  if (!in.fixed(2, &version) || version < 2 || version > 5) return std::nullopt;
  if (version >= 5) {
    uint8_t header_address_size = 0, selector_size = 0;
    if (!in.u8(&header_address_size) || !in.u8(&selector_size)) return std::nullopt;
    if (header_address_size != address_size || selector_size != 0) return std::nullopt;
  }
  if (!in.fixed(offset_size, &header_length) || header_length > in.left()) return std::nullopt;
  table.program_begin_ = in.at() + header_length;
  in = Cursor(sections.line, in.at(), table.program_begin_);
  uint8_t default_is_stmt = 0, line_base = 0;
  if (!in.u8(&table.min_instruction_length_)) return std::nullopt;
  if (version >= 4 && (!in.u8(&table.max_ops_per_instruction_) || table.max_ops_per_instruction_ == 0))
    return std::nullopt;
  if (!in.u8(&default_is_stmt) || !in.u8(&line_base) || !in.u8(&table.line_range_) || !in.u8(&table.opcode_base_))
    return std::nullopt;
  table.line_base_ = static_cast<int8_t>(line_base);
  for (unsigned opcode = 1; opcode < table.opcode_base_; ++opcode)
    if (!in.u8(&table.standard_opcode_lengths_[opcode])) return std::nullopt;
  // The operands of the standard opcodes are fixed by the standard; a table that says otherwise is
  // damaged (libdw refuses it too).
  static constexpr std::array<uint8_t, 13> kStandardLengths = {0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1};
  for (unsigned opcode = 1; opcode < std::min<unsigned>(table.opcode_base_, kStandardLengths.size()); ++opcode)
    if (table.standard_opcode_lengths_[opcode] != kStandardLengths[opcode]) return std::nullopt;

  if (version < 5) {
    // Directory 0 is the unit's comp_dir, then NUL-terminated names up to an empty one; files are
    // (name, directory, mtime, length) up to an empty name, numbered from 1.
    table.directories_.push_back(comp_dir);
    for (;;) {
      const char* directory = nullptr;
      if (!in.cstr(&directory)) return std::nullopt;
      if (*directory == '\0') break;
      table.directories_.push_back(directory);
    }
    table.files_.emplace_back("???");
    for (;;) {
      const char* name = nullptr;
      uint64_t directory = 0, ignored = 0;
      if (!in.cstr(&name)) return std::nullopt;
      if (*name == '\0') break;
      if (!in.uleb(&directory) || !in.uleb(&ignored) || !in.uleb(&ignored)) return std::nullopt;
      if (directory >= table.directories_.size()) return std::nullopt;
      table.files_.push_back(file_path(table.directories_[directory], name));
    }
  } else {
    // DWARF 5: each table is described by (content type, form) columns, then a count of entries.
    auto read_entries = [&](bool files) {
      uint8_t column_count = 0;
      if (!in.u8(&column_count)) return false;
      std::vector<EntryColumn> columns(column_count);
      bool has_path = false, has_directory = false;
      for (EntryColumn& column : columns) {
        if (!in.uleb(&column.content) || !in.uleb(&column.form)) return false;
        has_path |= column.content == DW_LNCT_path;
        has_directory |= column.content == DW_LNCT_directory_index;
      }
      uint64_t count = 0;
      if (!in.uleb(&count)) return false;
      if (count != 0 && (!has_path || (files && !has_directory))) return false;
      if (count > in.left()) return false;  // every entry takes a byte at least
      for (uint64_t i = 0; i < count; ++i) {
        const char* path = nullptr;
        uint64_t directory = 0;
        for (const EntryColumn& column : columns) {
          const char* text = nullptr;
          uint64_t number = 0;
          if (!read_entry_value(in, column.form, offset_size, sections, &text, &number)) return false;
          if (column.content == DW_LNCT_path) {
            if (text == nullptr) return false;
            path = text;
          } else if (column.content == DW_LNCT_directory_index) {
            if (text != nullptr) return false;
            directory = number;
          }
        }
        if (path == nullptr) return false;
        if (!files) {
          table.directories_.push_back(path);
        } else {
          if (directory >= table.directories_.size()) return false;
          table.files_.push_back(file_path(table.directories_[directory], path));
        }
      }
      return true;
    };
    if (!read_entries(false) || !read_entries(true)) return std::nullopt;
  }
  if (in.at() != table.program_begin_) return std::nullopt;  // the tables must fill the header

  // One run of the whole program: sequences, checkpoints, and the greatest row.
  Sequence current;
  uint32_t rows_in_sequence = 0, since_checkpoint = 0;
  uint64_t previous_address = 0;
  auto on_row = [&](const Checkpoint& state, bool end, uint64_t resume) {
    const uint32_t sequence = static_cast<uint32_t>(table.sequences_.size());
    if (rows_in_sequence == 0) {
      current = Sequence{state.address, state.address, static_cast<uint32_t>(table.checkpoints_.size()), 0, true};
    } else {
      if (state.address < previous_address) current.in_order = false;
      current.low = std::min(current.low, state.address);
      current.high = std::max(current.high, state.address);
    }
    previous_address = state.address;
    // Checkpoints are at rows that do not end a sequence: a lookup starts at one and reads on.
    if (!end && (current.checkpoints == 0 || since_checkpoint >= kRowsPerCheckpoint)) {
      Checkpoint checkpoint = state;
      checkpoint.resume = resume;
      checkpoint.ordinal = rows_in_sequence;
      table.checkpoints_.push_back(checkpoint);
      ++current.checkpoints;
      since_checkpoint = 0;
    }
    ++since_checkpoint;
    const Ranked ranked{state.address, !end, sequence, rows_in_sequence, state.file, static_cast<int>(state.line)};
    if (!table.greatest_ || *table.greatest_ < ranked) table.greatest_ = ranked;
    ++rows_in_sequence;
    if (end) {
      table.sequences_.push_back(current);
      rows_in_sequence = 0;
      since_checkpoint = 0;
    }
    return true;
  };
  Checkpoint initial;
  initial.file = 1;
  initial.line = 1;
  if (!table.run(table.program_begin_, initial, on_row, &table.files_)) return std::nullopt;
  if (rows_in_sequence > 0) table.sequences_.push_back(current);  // a program that stops without an end
  table.directories_.clear();  // only DW_LNE_define_file needed them, and that was read above

  table.by_low_.resize(table.sequences_.size());
  for (uint32_t i = 0; i < table.by_low_.size(); ++i) table.by_low_[i] = i;
  std::sort(table.by_low_.begin(), table.by_low_.end(),
            [&](uint32_t a, uint32_t b) { return table.sequences_[a].low < table.sequences_[b].low; });
  uint64_t high = 0;
  for (uint32_t index : table.by_low_) {
    high = std::max(high, table.sequences_[index].high);
    table.prefix_high_.push_back(high);
  }
  return table;
}

// The greatest row (as libdw ranks them) of one sequence at or below pc.
std::optional<LineTable::Ranked> LineTable::best_in(uint32_t sequence, uint64_t pc) const {
  const Sequence& s = sequences_[sequence];
  if (s.low > pc) return std::nullopt;
  if (s.checkpoints == 0) return Ranked{s.low, false, sequence, 0, 0, 0};  // a lone end of sequence
  const auto first = checkpoints_.begin() + s.first_checkpoint;
  const auto last = first + s.checkpoints;
  // In order, the rows from the last checkpoint at or below pc up to the first row above it hold
  // the answer; otherwise every row of the sequence is looked at.
  auto start = first;
  if (s.in_order) {
    start = std::upper_bound(first, last, pc, [](uint64_t a, const Checkpoint& c) { return a < c.address; }) - 1;
  }
  const Checkpoint& from = *start;
  std::optional<Ranked> best =
      Ranked{from.address, true, sequence, from.ordinal, from.file, static_cast<int>(from.line)};
  uint64_t ordinal = from.ordinal;
  const bool in_order = s.in_order;
  run(
      from.resume, from,
      [&](const Checkpoint& state, bool end, uint64_t) {
        ++ordinal;
        if (state.address > pc) return !in_order && !end;
        const Ranked row{state.address, !end, sequence, ordinal, state.file, static_cast<int>(state.line)};
        if (*best < row) best = row;
        return !end;
      },
      nullptr);
  return best;
}

std::optional<LineRow> LineTable::row_at(uint64_t pc) const {
  // Sequences by least address, from the last that starts at or below pc down, while one could
  // still hold a row as great as the best so far.
  auto it = std::upper_bound(by_low_.begin(), by_low_.end(), pc,
                             [&](uint64_t a, uint32_t index) { return a < sequences_[index].low; });
  std::optional<Ranked> best;
  for (size_t i = static_cast<size_t>(it - by_low_.begin()); i-- > 0;) {
    if (best && best->address > prefix_high_[i]) break;
    const std::optional<Ranked> candidate = best_in(by_low_[i], pc);
    if (candidate && (!best || *best < *candidate)) best = candidate;
  }
  if (!best || !best->normal) return std::nullopt;
  if (greatest_ && best->sequence == greatest_->sequence && best->ordinal == greatest_->ordinal) return std::nullopt;
  return LineRow{best->file, best->line};
}

}  // namespace lockscope::symbolizer
