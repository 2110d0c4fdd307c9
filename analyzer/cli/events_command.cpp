// `lockanalyze events FILE`: one row per lock event, for checking a recording against perf script
// and for scripts that want the raw facts. A summary of what was read goes to stderr.
#include <array>
#include <bit>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>

#include "commands.hpp"
#include "lockscope/error.hpp"
#include "lockscope/lock_events.hpp"
#include "lockscope/perf_data.hpp"
#include "thread_names.hpp"

namespace lockscope::cli {
namespace {

// A line buffer flushed to a FILE*: rows are formatted in place, without allocating. A row is
// written through a plain char pointer (put_* below) that starts with kRowReserve bytes of room,
// so its numbers and separators need no check each; strings make room for themselves.
class LineWriter {
 public:
  static constexpr size_t kRowReserve = 1024;  // a row's numbers, separators and quotes

  // `output_name` names the output in errors ("standard output", or the -o file).
  LineWriter(FILE* out, std::string output_name)
      : out_(out), output_name_(std::move(output_name)), buffer_(kCapacity) {}
  ~LineWriter() {
    try {
      flush();
    } catch (const Error&) {
      // Reported by the explicit flush on the normal path; a destructor must not throw.
    }
  }
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  // Where the next row starts.
  char* begin_row() { return room(buffer_.data() + used_, 0); }
  // Room for `size` more bytes at `at`, and again kRowReserve after them: flushes what is written
  // when the buffer is short (only a huge string grows it), and returns where to go on writing.
  char* room(char* at, size_t size) {
    size_t used = static_cast<size_t>(at - buffer_.data());
    if (used + size + kRowReserve <= buffer_.size()) return at;
    used_ = used;
    flush();
    if (size + kRowReserve > buffer_.size()) buffer_.resize(size + kRowReserve);
    return buffer_.data();
  }
  void end_row(char* at) {
    *at++ = '\n';
    used_ = static_cast<size_t>(at - buffer_.data());
    if (used_ >= kFlushAt) flush();
  }
  void flush() {
    if (used_ != 0 && fwrite(buffer_.data(), 1, used_, out_) != used_) {
      used_ = 0;
      throw write_error();
    }
    used_ = 0;
  }
  void finish() {
    flush();
    if (fflush(out_) != 0) throw write_error();
  }

 private:
  static constexpr size_t kCapacity = 1 << 17;
  static constexpr size_t kFlushAt = 1 << 16;

  // The error names the output, so the reader's layer does not name the input instead.
  Error write_error() const {
    return Error(std::string("cannot write the rows: ") + std::strerror(errno))
        .file(output_name_)
        .hint("is the disk full, or the reader gone?");
  }

  FILE* out_;
  std::string output_name_;
  std::vector<char> buffer_;
  size_t used_ = 0;
};

// The put_* helpers write at `at` (within a row's reserve) and return the end of what they wrote.
char* put_char(char* at, char value) {
  *at = value;
  return at + 1;
}

// A literal or a short fixed text (a context name): fits the row's reserve.
char* put_fixed(char* at, std::string_view value) {
  std::memcpy(at, value.data(), value.size());
  return at + value.size();
}

char* put_text(LineWriter& out, char* at, std::string_view value) {
  at = out.room(at, value.size());
  return put_fixed(at, value);
}

// The 8 decimal digits of a value below 10^8, leading zeros included, as ASCII, first digit in the
// lowest byte (memory order): split into halves of 4 digits, each into pairs, each pair into
// digits, all lanes at once. Checked against std::to_chars for every value below 10^8.
uint64_t eight_digits_of(uint32_t value) {
  uint64_t merged = (value / 10000) | (static_cast<uint64_t>(value % 10000) << 32);
  uint64_t hundreds_high = ((merged * 10486) >> 20) & 0x0000007f0000007full;  // each lane / 100
  uint64_t hundreds_low = merged - 100 * hundreds_high;
  uint64_t pairs = hundreds_high | (hundreds_low << 16);
  uint64_t tens_high = ((pairs * 103) >> 10) & 0x000f000f000f000full;  // each lane / 10
  uint64_t tens_low = pairs - 10 * tens_high;
  return (tens_high | (tens_low << 8)) + 0x3030303030303030ull;
}

// "00" to "99".
constexpr std::array<char, 200> kDigitPairs = [] {
  std::array<char, 200> pairs{};
  for (size_t i = 0; i < 100; ++i) {
    pairs[2 * i] = static_cast<char>('0' + i / 10);
    pairs[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return pairs;
}();

// A value below 100 with no branch on its length: most of a row's numbers (cpu, frame counts,
// preempt count) are one or two digits, and std::to_chars' loop mispredicted where they change
// length from row to row. Both bytes are written (the row's reserve has room); the length counts.
char* put_below_100(char* at, uint32_t value) {
  const char* pair = kDigitPairs.data() + 2 * size_t{value};
  bool two_digits = value >= 10;
  at[0] = pair[two_digits ? 0 : 1];
  at[1] = pair[1];
  return at + 1 + static_cast<size_t>(two_digits);
}

template <typename Int>
char* put_number(char* at, Int value) {
  if constexpr (std::is_signed_v<Int>) {
    if (value < 0) return std::to_chars(at, at + 24, value).ptr;
  }
  if (static_cast<uint64_t>(value) < 100) return put_below_100(at, static_cast<uint32_t>(value));
  return std::to_chars(at, at + 24, value).ptr;
}

// Times in nanoseconds have 11 to 20 digits: std::to_chars spent most of a row on them, a digit
// pair per step. The low 8 digits are made at once instead; to_chars writes the few above them.
char* put_number(char* at, uint64_t value) {
  constexpr uint64_t kLowDigits = 100'000'000;
  if (value < 100) return put_below_100(at, static_cast<uint32_t>(value));
  if (value < kLowDigits) return std::to_chars(at, at + 24, value).ptr;
  at = std::to_chars(at, at + 24, value / kLowDigits).ptr;
  uint64_t low = eight_digits_of(static_cast<uint32_t>(value % kLowDigits));
  std::memcpy(at, &low, 8);
  return at + 8;
}

// The 8 hex digits of a 32-bit value as ASCII, first digit in the lowest byte (memory order).
// Each nibble is spread into its own byte, then turned into '0'-'9' or 'a'-'f' with arithmetic.
uint64_t hex_digits_of(uint32_t value) {
  uint64_t v = value;
  v = (v | (v << 16)) & 0x0000ffff0000ffffull;
  v = (v | (v << 8)) & 0x00ff00ff00ff00ffull;
  v = (v | (v << 4)) & 0x0f0f0f0f0f0f0f0full;  // nibble i in byte i: last digit first
  uint64_t letters = ((v + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;  // nibble >= 10
  v += 0x3030303030303030ull + letters * ('a' - '0' - 10);
  return __builtin_bswap64(v);
}

// "0x" and lowercase digits without leading zeros, as std::to_chars(..., 16) writes them, made
// without a loop: a per-digit loop mispredicted its exit on nearly every value and was most of
// the hex time (addresses have 16 digits, flags 1 or 2).
char* put_hex(char* at, uint64_t value) {
  unsigned __int128 text =
      static_cast<unsigned __int128>(hex_digits_of(value)) << 64 | hex_digits_of(static_cast<uint32_t>(value >> 32));
  size_t digits = value == 0 ? 1 : static_cast<size_t>(67 - std::countl_zero(value)) / 4;
  text >>= 8 * (16 - digits);  // drop the leading zeros (the lowest bytes)
  at[0] = '0';
  at[1] = 'x';
  std::memcpy(at + 2, &text, 16);  // a fixed copy (the row's reserve has room); `digits` count
  return at + 2 + digits;
}

// Text that neither CSV nor JSON would quote or escape (no comma, quote, backslash or control
// byte): written as it is. The events command knows this once per comm and per event name.
bool is_plain_text(std::string_view value) {
  for (char c : value) {
    unsigned char byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || c == ',' || c == '"' || c == '\\') return false;
  }
  return true;
}

// A short plain text (a comm, an event name) kept at the start of a fixed block, so that it is
// written with one copy of constant size: copies of the text's own length were calls to memcpy,
// two per row. The row's reserve holds the block's overrun.
struct ShortText {
  static constexpr size_t kCapacity = 64;
  std::array<char, kCapacity> bytes{};
  size_t size = 0;

  // A copy of `text`, or nullptr when it is too long or not plain (it is written the slow way).
  static const ShortText* make(ShortText& block, std::string_view text, bool plain) {
    if (!plain || text.size() > kCapacity) return nullptr;
    std::memcpy(block.bytes.data(), text.data(), text.size());
    block.size = text.size();
    return &block;
  }
};

char* put_short(char* at, const ShortText& text) {
  std::memcpy(at, text.bytes.data(), ShortText::kCapacity);
  return at + text.size;
}

// Each context's name (context_name) in a block: a call to context_name and a memcpy of its length
// per row were a tenth of the writer's time. ExecContext has four values; any other is named
// "task", as context_name names it.
constexpr size_t kContexts = 4;
const std::array<ShortText, kContexts> kContextWords = [] {
  std::array<ShortText, kContexts> words{};
  for (size_t i = 0; i < kContexts; ++i) ShortText::make(words[i], context_name(static_cast<ExecContext>(i)), true);
  return words;
}();

const ShortText& context_word(ExecContext context) {
  size_t index = static_cast<size_t>(context);
  return index < kContexts ? kContextWords[index] : kContextWords[0];
}

struct EventRow {
  const LockEvent& event;
  std::string_view comm;
  bool comm_is_plain = false;                   // is_plain_text(comm), known ahead
  bool event_name_is_plain = false;             // is_plain_text(event.event_name), known ahead
  const ShortText* short_comm = nullptr;        // comm in a block, when it is short and plain
  const ShortText* short_event_name = nullptr;  // the same for event.event_name
  uint64_t kernel_frames = 0;
  uint64_t user_frames = 0;
  uint64_t stack_depth() const { return kernel_frames + user_frames; }
};

// Kernel and user frames of a callchain, as perf::for_each_frame would sort them: an address
// counts as user after a USER or GUEST_USER marker, as kernel otherwise (frames before any marker
// are the kernel's own). Without branches on the values: where the user marker sits changes from
// sample to sample, and a branch on it mispredicted about once per row (this loop was most of the
// time spent per sample outside the writer).
void count_frames(const perf::Callchain& chain, EventRow& row) {
  constexpr auto kUser = static_cast<uint64_t>(PERF_CONTEXT_USER);
  constexpr auto kGuestUser = static_cast<uint64_t>(PERF_CONTEXT_GUEST_USER);
  uint64_t markers = 0, user = 0;
  bool in_user = false;
  for (uint64_t i = 0; i < chain.size(); ++i) {
    uint64_t value = chain[i];
    bool marker = perf::is_context_marker(value);
    in_user = marker ? (value == kUser || value == kGuestUser) : in_user;
    markers += marker;
    user += !marker & in_user;
  }
  row.user_frames = user;
  row.kernel_frames = chain.size() - markers - user;
}

// Bytes that make a CSV field need quotes, as a table: one load per character.
constexpr std::array<bool, 256> kCsvSpecial = [] {
  std::array<bool, 256> special{};
  for (unsigned char c : {',', '"', '\n', '\r'}) special[c] = true;
  return special;
}();

bool needs_csv_quotes(std::string_view value) {
  for (char c : value) {
    if (kCsvSpecial[static_cast<unsigned char>(c)]) return true;
  }
  return false;
}

char* put_csv_field(LineWriter& out, char* at, std::string_view value, bool plain) {
  if (plain || !needs_csv_quotes(value)) return put_text(out, at, value);
  at = out.room(at, 2 * value.size() + 2);
  *at++ = '"';
  for (char c : value) {
    if (c == '"') *at++ = '"';
    *at++ = c;
  }
  *at++ = '"';
  return at;
}

char* put_json_string(LineWriter& out, char* at, std::string_view value, bool plain) {
  if (plain) {
    at = out.room(at, value.size() + 2);
    *at++ = '"';
    at = put_fixed(at, value);
    *at++ = '"';
    return at;
  }
  at = out.room(at, 6 * value.size() + 2);  // \u00XX for each control byte at worst
  *at++ = '"';
  for (char c : value) {
    unsigned char byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      *at++ = '\\';
      *at++ = c;
    } else if (byte < 0x20) {
      char escaped[8];
      snprintf(escaped, sizeof escaped, "\\u%04x", byte);
      at = put_fixed(at, escaped);
    } else {
      *at++ = c;
    }
  }
  *at++ = '"';
  return at;
}

// The columns of a row, in order, written once for every format: each format is a visitor with
// one member per kind of value (number, text, address, ...) that knows how it spells that kind.
// A visitor is a template argument, so each format's row compiles to straight-line code.
template <typename Visitor>
void visit_columns(const EventRow& row, Visitor& visitor) {
  const perf::Sample& sample = *row.event.sample;
  visitor.number("time_ns", sample.time);
  visitor.number("cpu", sample.cpu);
  visitor.number("pid", static_cast<int32_t>(sample.pid));
  visitor.number("tid", static_cast<int32_t>(sample.tid));
  visitor.text("comm", row.comm, row.comm_is_plain, row.short_comm);
  visitor.text("event", row.event.event_name, row.event_name_is_plain, row.short_event_name);
  visitor.optional_address("lock", row.event.lock);
  visitor.optional_number("ret", row.event.ret);
  visitor.word("context", context_word(row.event.context));
  visitor.boolean("irqs_off", row.event.irqs_off);
  visitor.number("stack_depth", row.stack_depth());
  visitor.number("kernel_frames", row.kernel_frames);
  visitor.number("user_frames", row.user_frames);
  visitor.number("preempt_count", static_cast<unsigned>(row.event.preempt_count));
  visitor.bit_flags("common_flags", row.event.common_flags);
  visitor.address("ip", sample.ip);
}

// CSV: a header row of the column names; in rows, absent values are empty fields.
class CsvRow {
 public:
  explicit CsvRow(LineWriter& out) : out_(out), at_(out.begin_row()) {}
  void end() { out_.end_row(at_); }

  template <typename Int>
  void number(std::string_view, Int value) {
    separate();
    at_ = put_number(at_, value);
  }
  void text(std::string_view, std::string_view value, bool plain, const ShortText* short_text) {
    separate();
    at_ = short_text != nullptr ? put_short(at_, *short_text) : put_csv_field(out_, at_, value, plain);
  }
  void address(std::string_view, uint64_t value) {
    separate();
    at_ = put_hex(at_, value);
  }
  void optional_address(std::string_view, std::optional<uint64_t> value) {
    separate();
    if (value) at_ = put_hex(at_, *value);
  }
  void optional_number(std::string_view, std::optional<int64_t> value) {
    separate();
    if (value) at_ = put_number(at_, *value);
  }
  void word(std::string_view, std::string_view value) {
    separate();
    at_ = put_fixed(at_, value);
  }
  void word(std::string_view, const ShortText& value) {
    separate();
    at_ = put_short(at_, value);
  }
  void boolean(std::string_view, bool value) {
    separate();
    at_ = put_char(at_, value ? '1' : '0');
  }
  void bit_flags(std::string_view, uint64_t value) { address({}, value); }

 private:
  void separate() {
    if (!first_) at_ = put_char(at_, ',');
    first_ = false;
  }

  LineWriter& out_;
  char* at_;
  bool first_ = true;
};

// The CSV header: the names the columns are visited with (the values of an empty row unused),
// written as a row of plain words.
class CsvHeader {
 public:
  explicit CsvHeader(LineWriter& out) : names_(out) {}
  void end() { names_.end(); }

  void number(std::string_view name, uint64_t) { put_name(name); }
  void text(std::string_view name, std::string_view, bool, const ShortText*) { put_name(name); }
  void address(std::string_view name, uint64_t) { put_name(name); }
  void optional_address(std::string_view name, std::optional<uint64_t>) { put_name(name); }
  void optional_number(std::string_view name, std::optional<int64_t>) { put_name(name); }
  void word(std::string_view name, const ShortText&) { put_name(name); }
  void boolean(std::string_view name, bool) { put_name(name); }
  void bit_flags(std::string_view name, uint64_t) { put_name(name); }

 private:
  void put_name(std::string_view name) { names_.word({}, name); }

  CsvRow names_;
};

// JSON lines: one object per row; absent values are null, addresses are "0x..." strings (JSON
// numbers lose 64-bit precision in most readers), flags are plain numbers.
class JsonRow {
 public:
  explicit JsonRow(LineWriter& out) : out_(out), at_(out.begin_row()) {}
  void end() {
    at_ = put_char(at_, '}');
    out_.end_row(at_);
  }

  template <typename Int>
  void number(std::string_view name, Int value) {
    key(name);
    at_ = put_number(at_, value);
  }
  void text(std::string_view name, std::string_view value, bool plain, const ShortText* short_text) {
    key(name);
    if (short_text != nullptr) {
      put_quoted_short(*short_text);
    } else {
      at_ = put_json_string(out_, at_, value, plain);
    }
  }
  void address(std::string_view name, uint64_t value) {
    key(name);
    put_quoted_hex(value);
  }
  void optional_address(std::string_view name, std::optional<uint64_t> value) {
    key(name);
    if (value) {
      put_quoted_hex(*value);
    } else {
      at_ = put_fixed(at_, "null");
    }
  }
  void optional_number(std::string_view name, std::optional<int64_t> value) {
    key(name);
    at_ = value ? put_number(at_, *value) : put_fixed(at_, "null");
  }
  void word(std::string_view name, const ShortText& value) {
    key(name);
    put_quoted_short(value);
  }
  void boolean(std::string_view name, bool value) {
    key(name);
    at_ = put_fixed(at_, value ? "true" : "false");
  }
  void bit_flags(std::string_view name, uint64_t value) { number(name, value); }

 private:
  // `{"name":` for the first column, `,"name":` after: column names are plain text.
  void key(std::string_view name) {
    at_ = put_char(at_, first_ ? '{' : ',');
    first_ = false;
    at_ = put_char(at_, '"');
    at_ = put_fixed(at_, name);
    at_ = put_fixed(at_, "\":");
  }
  void put_quoted_hex(uint64_t value) {
    at_ = put_char(at_, '"');
    at_ = put_hex(at_, value);
    at_ = put_char(at_, '"');
  }
  void put_quoted_short(const ShortText& text) {
    at_ = put_char(at_, '"');
    at_ = put_short(at_, text);
    at_ = put_char(at_, '"');
  }

  LineWriter& out_;
  char* at_;
  bool first_ = true;
};

// Flattened: every call inside is inlined, so each column name's length is a constant and its
// copy a few moves. Left to the compiler, the JSON writer's key and number members stayed calls,
// the names went through memmove, and JSON rows took 5-30% longer than with literal keys.
template <typename Row>
[[gnu::flatten]] void write_row(LineWriter& out, const EventRow& row) {
  Row writer(out);
  visit_columns(row, writer);
  writer.end();
}

void write_csv_header(LineWriter& out) {
  const perf::Sample no_sample{};
  LockEvent no_event{};
  no_event.sample = &no_sample;
  CsvHeader header(out);
  visit_columns(EventRow{no_event, {}}, header);
  header.end();
}

struct OutputFormat {
  std::string_view name;
  void (*header)(LineWriter&);
  void (*row)(LineWriter&, const EventRow&);
};
constexpr std::array kOutputFormats = {
    OutputFormat{"csv", write_csv_header, write_row<CsvRow>},
    OutputFormat{"jsonl", [](LineWriter&) {}, write_row<JsonRow>},
};

class EventsVisitor final : public perf::RecordVisitor {
 public:
  EventsVisitor(LineWriter& out, const OutputFormat& format) : out_(out), format_(format) {}

  void on_metadata(const perf::Metadata& metadata) override {
    decoder_ = std::make_unique<LockEventDecoder>(metadata);
    format_.header(out_);
  }
  void on_comm(const perf::CommRecord& comm) override {
    names_.set(comm.tid, comm.comm);
    forget_last_comm();
  }
  void on_fork(const perf::TaskRecord& task) override {
    names_.fork(task.tid, task.ptid);
    forget_last_comm();
  }
  void on_sample(const perf::Sample& sample) override {
    if (sample.event->index >= samples_by_event_.size()) {
      samples_by_event_.resize(sample.event->index + 1);
    }
    ++samples_by_event_[sample.event->index];
    const LockEvent* event = decoder_->decode(sample);
    if (event == nullptr) {
      ++other_samples_;
      return;
    }
    ++lock_events_;
    EventRow row{*event, comm_of(sample.tid)};
    row.comm_is_plain = last_comm_is_plain_;
    row.short_comm = last_short_comm_;
    const EventNameForm& name = event_name_form(sample.event->index, event->event_name);
    row.event_name_is_plain = name.plain;
    row.short_event_name = name.is_short ? &name.block : nullptr;
    count_frames(sample.callchain, row);
    format_.row(out_, row);
  }

  const LockEventDecoder* decoder() const { return decoder_.get(); }
  uint64_t lock_events() const { return lock_events_; }
  uint64_t other_samples() const { return other_samples_; }
  std::map<std::string, uint64_t> samples_by_event() const {
    std::map<std::string, uint64_t> out;
    for (size_t i = 0; i < samples_by_event_.size(); ++i) {
      if (samples_by_event_[i] == 0) continue;
      const std::string& name = decoder_->event_name(i);
      out[name.empty() ? "(unnamed)" : name] += samples_by_event_[i];
    }
    return out;
  }

 private:
  // Nearly every row's thread is the previous row's (99% on the shared recording): remember its
  // comm instead of hashing the tid again. COMM and FORK records may change the names.
  std::string_view comm_of(uint32_t tid) {
    if (!has_last_comm_ || tid != last_tid_) {
      last_comm_ = names_.get(tid);
      last_comm_is_plain_ = is_plain_text(last_comm_);
      last_short_comm_ = ShortText::make(last_comm_block_, last_comm_, last_comm_is_plain_);
      last_tid_ = tid;
      has_last_comm_ = true;
    }
    return last_comm_;
  }
  // An event's name does not change: whether it is plain text, and its block, are worked out once
  // per event.
  struct EventNameForm {
    bool known = false;
    bool plain = false;
    bool is_short = false;
    ShortText block;
  };
  const EventNameForm& event_name_form(size_t index, std::string_view name) {
    if (index >= event_names_.size()) event_names_.resize(index + 1);
    EventNameForm& form = event_names_[index];
    if (!form.known) {
      form.known = true;
      form.plain = is_plain_text(name);
      form.is_short = ShortText::make(form.block, name, form.plain) != nullptr;
    }
    return form;
  }
  void forget_last_comm() { has_last_comm_ = false; }

  LineWriter& out_;
  const OutputFormat& format_;
  std::unique_ptr<LockEventDecoder> decoder_;
  ThreadNames names_;
  bool has_last_comm_ = false;
  uint32_t last_tid_ = 0;
  std::string_view last_comm_;
  bool last_comm_is_plain_ = false;
  ShortText last_comm_block_;
  const ShortText* last_short_comm_ = nullptr;
  std::vector<EventNameForm> event_names_;  // by event index
  std::vector<uint64_t> samples_by_event_;  // by event index
  uint64_t lock_events_ = 0;
  uint64_t other_samples_ = 0;
};

std::string join_counts(const std::map<std::string, uint64_t>& counts) {
  std::string out;
  for (const auto& [name, count] : counts) {
    if (!out.empty()) out += ", ";
    out += name + " " + std::to_string(count);
  }
  return out.empty() ? "none" : out;
}

void print_summary(const perf::PerfDataReader& reader, const EventsVisitor& visitor, double seconds) {
  const perf::ReadStats& stats = reader.stats();
  const perf::Metadata& metadata = reader.metadata();
  std::fprintf(stderr, "%s: %s mode, %zu events, kernel %s, host %s, read in %.3f s\n",
               reader.path() == "-" ? "<stdin>" : reader.path().c_str(), metadata.pipe_mode ? "pipe" : "file",
               metadata.events.size(), metadata.os_release.empty() ? "?" : metadata.os_release.c_str(),
               metadata.hostname.empty() ? "?" : metadata.hostname.c_str(), seconds);
  std::fprintf(stderr, "records by type: %s\n", join_counts(stats.records_by_type).c_str());
  std::fprintf(stderr, "samples by event: %s\n", join_counts(visitor.samples_by_event()).c_str());
  std::fprintf(stderr, "lock events: %llu; other samples skipped: %llu\n",
               static_cast<unsigned long long>(visitor.lock_events()),
               static_cast<unsigned long long>(visitor.other_samples()));
  std::fprintf(stderr,
               "lost events: %llu; lost samples: %llu; unknown records skipped: %llu; samples "
               "matching no event: %llu; out-of-order records: %llu\n",
               static_cast<unsigned long long>(stats.lost_events), static_cast<unsigned long long>(stats.lost_samples),
               static_cast<unsigned long long>(stats.unknown_records_skipped),
               static_cast<unsigned long long>(stats.samples_without_event),
               static_cast<unsigned long long>(stats.out_of_order_records));
  if (stats.compressed_bytes_in > 0) {
    std::fprintf(stderr, "compressed: %llu bytes decoded to %llu\n",
                 static_cast<unsigned long long>(stats.compressed_bytes_in),
                 static_cast<unsigned long long>(stats.compressed_bytes_out));
  }
  if (const LockEventDecoder* decoder = visitor.decoder()) {
    if (visitor.lock_events() == 0) {
      std::fprintf(stderr, "warning: %s\n",
                   explain_no_lock_events(decoder->events_summary(), visitor.other_samples()).c_str());
    }
    if (decoder->short_payloads() > 0) {
      std::fprintf(stderr, "warning: %llu lock events had payloads too short for their fields\n",
                   static_cast<unsigned long long>(decoder->short_payloads()));
    }
  }
  print_read_warnings(stats, "warning: ");
}

struct EventsOptions {
  std::string input;
  std::string format = "csv";
  std::string output = "-";
  std::string order = "time";
  bool strict = false;
};

void run_events(const EventsOptions& options) {
  const OutputFormat* format = nullptr;
  for (const auto& candidate : kOutputFormats) {
    if (candidate.name == options.format) format = &candidate;
  }
  if (format == nullptr) throw Error("unknown --format " + options.format);  // CLI11 checked it
  auto start = std::chrono::steady_clock::now();
  auto reader = perf::PerfDataReader::open(options.input);

  std::unique_ptr<FILE, int (*)(FILE*)> file(nullptr, fclose);
  FILE* out = stdout;
  if (options.output != "-") {
    file.reset(fopen(options.output.c_str(), "w"));
    if (!file) {
      throw Error("cannot open the output for writing")
          .file(options.output)
          .hint("check the directory exists and is writable");
    }
    out = file.get();
  }
  LineWriter writer(out, options.output == "-" ? "standard output" : options.output);
  EventsVisitor visitor(writer, *format);
  reader->read(visitor, options.order == "file" ? perf::RecordOrder::file : perf::RecordOrder::time);
  writer.finish();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  print_summary(*reader, visitor, seconds);
  fail_if_damaged(reader->stats(), options.strict);
}

}  // namespace

void add_events_command(CLI::App& app) {
  auto options = std::make_shared<EventsOptions>();
  CLI::App* command =
      app.add_subcommand("events", "One row per lock event (CSV or JSON lines); a summary of the recording on stderr");
  add_input_option(command, options->input, "perf.data recording, or - for a pipe-mode stream");
  std::vector<std::string> names;
  names.reserve(kOutputFormats.size());
  for (const auto& format : kOutputFormats) names.emplace_back(format.name);
  command->add_option("--format", options->format, "Output format")->check(CLI::IsMember(names))->capture_default_str();
  command->add_option("-o,--output", options->output, "Write rows here instead of stdout");
  command
      ->add_option("--order", options->order,
                   "time: rows in time order as perf script shows them, with each thread's comm "
                   "at that moment; file: rows in the order they were written")
      ->check(CLI::IsMember({"time", "file"}))
      ->capture_default_str();
  add_strict_option(command, options->strict);
  command->callback([options] { run_events(*options); });
}

}  // namespace lockscope::cli
