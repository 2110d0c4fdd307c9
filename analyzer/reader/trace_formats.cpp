#include "lockscope/trace_formats.hpp"

#include <event-parse.h>
#include <algorithm>
#include <cstring>

#include "byte_cursor.hpp"
#include "lockscope/error.hpp"

namespace lockscope::perf {
namespace {

constexpr std::string_view kTracingMagic("\x17\x08\x44tracing", 10);
// A single format text larger than this is not a format; refuse before allocating for it.
constexpr uint64_t kMaxFormatSize = 1u << 20;
constexpr uint32_t kMaxFormatCount = 1u << 20;

Bytes take_sized_text(ByteCursor& cursor, uint64_t size, std::string_view what) {
  if (size > kMaxFormatSize) {
    cursor.fail(std::string(what) + " claims " + std::to_string(size) + " bytes, expected at most " +
                std::to_string(kMaxFormatSize));
  }
  return cursor.take(size, what);
}

// libtraceevent wants a mutable, NUL-terminated buffer for some calls.
std::string as_text(Bytes bytes) { return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()); }

// lockscope reads fields, never prints events: the "print fmt:" part goes to libtraceevent as an
// empty format. Its print-argument parser crashes on some malformed formats (libtraceevent 1.7,
// found by fuzzing); its field parser is all that is needed.
void without_print_format(std::string& format) {
  static constexpr std::string_view kPrintFormat = "\nprint fmt:";
  size_t at = format.find(kPrintFormat);
  if (at == std::string::npos) return;
  format.resize(at);
  format += "\nprint fmt: \"\"\n";
}

// Tabs, newlines and the printable ASCII characters: what the kernel writes in a format file.
bool is_printable_text(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '\t' || c == '\n' || (c >= ' ' && c <= '~'); });
}

bool version_at_least_0_6(const std::string& version) {
  unsigned major = 0, minor = 0;
  if (sscanf(version.c_str(), "%u.%u", &major, &minor) != 2) return false;
  return major > 0 || minor >= 6;
}

}  // namespace

TraceField TraceEventFormat::field(std::string_view field_name) const {
  TraceField out;
  auto* event = static_cast<tep_event*>(handle);
  if (event == nullptr) return out;
  std::string name(field_name);
  tep_format_field* found = tep_find_any_field(event, name.c_str());
  if (found == nullptr || found->offset < 0 || found->size < 0) return out;
  out.offset = static_cast<uint32_t>(found->offset);
  out.size = static_cast<uint32_t>(found->size);
  out.is_signed = (found->flags & TEP_FIELD_IS_SIGNED) != 0;
  out.found = true;
  return out;
}

std::unique_ptr<TraceFormats> TraceFormats::parse(std::span<const std::byte> blob, uint64_t file_offset) {
  std::unique_ptr<TraceFormats> formats(new TraceFormats());
  ByteCursor cursor(blob, file_offset, "tracing data");
  Bytes magic = cursor.take(kTracingMagic.size(), "the tracing data magic");
  if (std::memcmp(magic.data(), kTracingMagic.data(), kTracingMagic.size()) != 0) {
    throw Error("tracing data does not start with the \\x17\\x08\\x44tracing magic")
        .at(file_offset)
        .in("tracing data")
        .hint("the recording's metadata is corrupt");
  }
  formats->version_ = std::string(cursor.c_string("the tracing data version"));
  uint8_t big_endian = cursor.read<uint8_t>();
  uint8_t long_size = cursor.read<uint8_t>();
  uint32_t page_size = cursor.u32();
  if (big_endian != 0) {
    throw Error("tracing data is big-endian")
        .at(file_offset)
        .in("tracing data")
        .hint("lockscope reads recordings from little-endian machines only");
  }
  if (long_size != 4 && long_size != 8) cursor.fail("long size " + std::to_string(long_size) + ", expected 4 or 8");

  tep_set_loglevel(TEP_LOG_NONE);  // parse problems are reported by us, once, per event
  tep_handle* tep = tep_alloc();
  if (tep == nullptr) throw Error("libtraceevent could not allocate its handle");
  formats->tep_ = tep;
  tep_set_file_bigendian(tep, TEP_LITTLE_ENDIAN);
  tep_set_local_bigendian(tep, TEP_LITTLE_ENDIAN);
  tep_set_long_size(tep, long_size);
  tep_set_page_size(tep, static_cast<int>(page_size));

  auto expect_label = [&](std::string_view label) {
    std::string_view got = cursor.c_string(label);
    if (got != label)
      cursor.fail("expected \"" + std::string(label) + "\", found \"" + std::string(got.substr(0, 40)) + "\"");
  };
  expect_label("header_page");
  std::string header_page = as_text(take_sized_text(cursor, cursor.u64(), "header_page"));
  tep_parse_header_page(tep, header_page.data(), header_page.size(), long_size);
  expect_label("header_event");
  take_sized_text(cursor, cursor.u64(), "header_event");

  auto parse_formats = [&](const char* system) {
    uint32_t count = cursor.u32();
    if (count > kMaxFormatCount) {
      cursor.fail("format count " + std::to_string(count) + ", expected at most " + std::to_string(kMaxFormatCount));
    }
    cursor.require_array(count, 8, "event formats");
    for (uint32_t i = 0; i < count; ++i) {
      uint64_t size = cursor.u64();
      std::string text = as_text(take_sized_text(cursor, size, "an event format"));
      without_print_format(text);
      // A format is printable ASCII text. libtraceevent 1.7's tokenizer makes no token of any
      // other byte, and after a field's "[" it then dereferences the missing token (found by
      // fuzzing: "a[" then a NUL, then "a[" then 0x80; every control byte and byte over 0x7e does
      // it). Such a format never reaches it and counts as one it could not parse.
      if (!is_printable_text(text) || tep_parse_event(tep, text.data(), text.size(), system) != 0) {
        std::string_view name_line(text);
        auto start = name_line.find("name: ");
        auto end = name_line.find('\n', start);
        formats->unparsed_.push_back(std::string(system) + ":" +
                                     (start == std::string_view::npos
                                          ? std::string("?")
                                          : std::string(name_line.substr(start + 6, end - start - 6))));
      }
    }
  };
  parse_formats("ftrace");
  uint32_t systems = cursor.u32();
  if (systems > kMaxFormatCount) {
    cursor.fail("system count " + std::to_string(systems) + ", expected at most " + std::to_string(kMaxFormatCount));
  }
  for (uint32_t i = 0; i < systems; ++i) {
    std::string system(cursor.c_string("a system name"));
    parse_formats(system.c_str());
  }
  // kallsyms, printk formats and saved cmdlines follow; lockscope needs none of them, but the
  // sizes are checked so a cut-off blob is reported rather than silently accepted.
  cursor.skip(cursor.u32(), "kallsyms");
  cursor.skip(cursor.u32(), "printk formats");
  if (version_at_least_0_6(formats->version_) && !cursor.at_end()) {
    cursor.skip(cursor.u64(), "saved cmdlines");
  }

  int count = tep_get_events_count(tep);
  for (int i = 0; i < count; ++i) {
    tep_event* event = tep_get_event(tep, i);
    if (event == nullptr) continue;
    TraceEventFormat format;
    format.id = event->id;
    format.system = event->system ? event->system : "";
    format.name = event->name ? event->name : "";
    format.handle = event;
    formats->events_.push_back(std::move(format));
  }
  std::sort(formats->events_.begin(), formats->events_.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  return formats;
}

TraceFormats::~TraceFormats() {
  if (tep_ != nullptr) tep_free(static_cast<tep_handle*>(tep_));
}

const TraceEventFormat* TraceFormats::find(int id) const {
  auto it = std::lower_bound(events_.begin(), events_.end(), id,
                             [](const TraceEventFormat& format, int key) { return format.id < key; });
  return it != events_.end() && it->id == id ? &*it : nullptr;
}

}  // namespace lockscope::perf
