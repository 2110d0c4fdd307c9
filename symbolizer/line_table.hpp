// A compile unit's line-number program (.debug_line, DWARF 2 to 5; the DWARF 5 standard, section
// 6.2), read here instead of through libdw. dwarf_getsrclines (elfutils 0.188) mallocs every row of
// the unit, sorts the whole table and keeps it: for the Debian vmlinux that was a fifth of a
// report's time and most of its page faults, for a few addresses per unit.
//
// Here the program is run once per unit to note each sequence's address range and a checkpoint
// (the registers that make a row, and where the program goes on) every kRowsPerCheckpoint rows; a
// lookup runs the program again from the nearest checkpoint below the address, a few dozen rows.
//
// The answer is the one libdw's dwarf_getsrc_die gives, so names do not change with the reader: the
// row with the greatest address <= pc, where at one address an end of sequence sorts before the
// other rows and rows otherwise keep program order; the table's greatest row counts as an end of
// sequence; and an end of sequence means no line.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace lockscope::symbolizer {

// The sections a line program refers to; empty spans for those a file lacks.
struct LineSections {
  std::span<const unsigned char> line;      // .debug_line
  std::span<const unsigned char> line_str;  // .debug_line_str (DW_FORM_line_strp, DWARF 5)
  std::span<const unsigned char> str;       // .debug_str (DW_FORM_strp)
};

struct LineRow {
  uint32_t file = 0;  // index into LineTable::files()
  int line = 0;
};

class LineTable {
 public:
  // The program at `offset` in .debug_line (the unit's DW_AT_stmt_list). `comp_dir` (the unit's
  // DW_AT_comp_dir, may be null) is directory 0 before DWARF 5. Nothing when the program is damaged
  // or uses a form not read here (as libdw, the unit then has no lines).
  static std::optional<LineTable> read(const LineSections& sections, uint64_t offset, const char* comp_dir,
                                       unsigned address_size);

  // The line of a code address, nothing when the table has none for it.
  std::optional<LineRow> row_at(uint64_t pc) const;

  // Source files by the index DW_LNS_set_file and DW_AT_call_file use, each "directory/name" unless
  // the name is absolute, as libdw's dwarf_filesrc gives them. Before DWARF 5, index 0 is "???".
  const std::vector<std::string>& files() const { return files_; }

 private:
  // The state after a row was made, and where the program goes on from there.
  struct Checkpoint {
    uint64_t address = 0;
    uint64_t resume = 0;  // offset in .debug_line of the next opcode
    int64_t line = 0;
    uint32_t file = 0;
    uint32_t op_index = 0;
    uint32_t ordinal = 0;  // the row's place in its sequence
  };
  struct Sequence {
    uint64_t low = 0, high = 0;  // least and greatest row address
    uint32_t first_checkpoint = 0, checkpoints = 0;
    bool in_order = true;  // row addresses never decrease (the assembler keeps them so)
  };
  // A row as libdw orders them: address, then an end of sequence first, then program order.
  struct Ranked {
    uint64_t address = 0;
    bool normal = false;  // not an end of sequence
    uint32_t sequence = 0;
    uint64_t ordinal = 0;
    uint32_t file = 0;
    int line = 0;
    bool operator<(const Ranked& other) const;
  };
  std::optional<Ranked> best_in(uint32_t sequence, uint64_t pc) const;

  std::span<const unsigned char> line_;
  uint64_t program_begin_ = 0, program_end_ = 0;
  unsigned address_size_ = 8;
  uint8_t min_instruction_length_ = 1, max_ops_per_instruction_ = 1, line_range_ = 0, opcode_base_ = 0;
  int8_t line_base_ = 0;
  std::array<uint8_t, 256> standard_opcode_lengths_{};  // operands of each standard opcode
  std::vector<const char*> directories_;                // into the sections; null: unknown
  std::vector<std::string> files_;
  std::vector<Sequence> sequences_;  // in program order
  std::vector<Checkpoint> checkpoints_;
  std::vector<uint32_t> by_low_;       // sequences by their least address
  std::vector<uint64_t> prefix_high_;  // greatest address of by_low_[0..i]
  std::optional<Ranked> greatest_;     // libdw marks this row as an end of sequence

  template <typename OnRow>
  bool run(uint64_t from, Checkpoint state, OnRow&& on_row, std::vector<std::string>* defined_files) const;
};

}  // namespace lockscope::symbolizer
