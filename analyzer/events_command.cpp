// `lockanalyze events FILE`: one row per lock event, for checking a recording against perf script
// and for scripts that want the raw facts. A summary of what was read goes to stderr.
#include <array>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "commands.hpp"
#include "thread_names.hpp"
#include "lockscope/error.hpp"
#include "lockscope/lock_events.hpp"
#include "lockscope/perf_data.hpp"

namespace lockscope::cli {
namespace {

// A line buffer flushed to a FILE*: rows are formatted in place, without allocating.
class LineWriter {
 public:
  explicit LineWriter(FILE* out) : out_(out), buffer_(kCapacity) {}
  ~LineWriter() {
    try {
      flush();
    } catch (const Error&) {
      // Reported by the explicit flush on the normal path; a destructor must not throw.
    }
  }
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  void text(std::string_view value) {
    reserve(value.size() + kRowReserve);
    std::memcpy(buffer_.data() + used_, value.data(), value.size());
    used_ += value.size();
  }
  // A row starts with room for everything but its strings (text() checks for those itself), so
  // the numbers and separators of a row are written without a check each.
  void begin_row() { reserve(kRowReserve); }
  // Room for `size` more bytes written with chr() (an escaped string).
  void reserve_more(size_t size) { reserve(size + kRowReserve); }
  void chr(char value) { buffer_[used_++] = value; }
  template <typename Int>
  void number(Int value) {
    used_ = static_cast<size_t>(
        std::to_chars(buffer_.data() + used_, buffer_.data() + used_ + 24, value).ptr -
        buffer_.data());
  }
  void hex(uint64_t value) {
    buffer_[used_++] = '0';
    buffer_[used_++] = 'x';
    used_ = static_cast<size_t>(
        std::to_chars(buffer_.data() + used_, buffer_.data() + used_ + 20, value, 16).ptr -
        buffer_.data());
  }
  void end_line() {
    buffer_[used_++] = '\n';
    if (used_ >= kFlushAt) flush();
  }
  void flush() {
    if (used_ != 0 && fwrite(buffer_.data(), 1, used_, out_) != used_) {
      used_ = 0;
      throw Error("cannot write the output").hint("is the disk full?");
    }
    used_ = 0;
  }

 private:
  static constexpr size_t kCapacity = 1 << 17;
  static constexpr size_t kFlushAt = 1 << 16;
  static constexpr size_t kRowReserve = 1024;  // a row's numbers, separators and quotes

  // Rows are far smaller than the slack above kFlushAt; only a huge string forces a flush here.
  // After text() there is again kRowReserve room for the rest of the row.
  void reserve(size_t size) {
    if (used_ + size <= buffer_.size()) return;
    flush();
    if (size > buffer_.size()) buffer_.resize(size);
  }

  FILE* out_;
  std::vector<char> buffer_;
  size_t used_ = 0;
};

struct EventRow {
  const LockEvent& event;
  std::string_view comm;
  uint64_t kernel_frames = 0;
  uint64_t user_frames = 0;
  uint64_t stack_depth() const { return kernel_frames + user_frames; }
};

bool needs_csv_quotes(std::string_view value) {
  for (char c : value) {
    if (c == ',' || c == '"' || c == '\n' || c == '\r') return true;
  }
  return false;
}

void csv_field(LineWriter& out, std::string_view value) {
  if (!needs_csv_quotes(value)) {
    out.text(value);
    return;
  }
  out.reserve_more(2 * value.size() + 2);
  out.chr('"');
  for (char c : value) {
    if (c == '"') out.chr('"');
    out.chr(c);
  }
  out.chr('"');
}

void json_string(LineWriter& out, std::string_view value) {
  out.reserve_more(6 * value.size() + 2);  // \u00XX for each control byte at worst
  out.chr('"');
  for (char c : value) {
    unsigned char byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.chr('\\');
      out.chr(c);
    } else if (byte < 0x20) {
      char escaped[8];
      snprintf(escaped, sizeof escaped, "\\u%04x", byte);
      out.text(escaped);
    } else {
      out.chr(c);
    }
  }
  out.chr('"');
}

void write_csv_header(LineWriter& out) {
  out.begin_row();
  out.text("time_ns,cpu,pid,tid,comm,event,lock,ret,context,irqs_off,stack_depth,kernel_frames,"
           "user_frames,preempt_count,common_flags,ip");
  out.end_line();
}

void write_csv_row(LineWriter& out, const EventRow& row) {
  const perf::Sample& sample = *row.event.sample;
  out.begin_row();
  out.number(sample.time);
  out.chr(',');
  out.number(sample.cpu);
  out.chr(',');
  out.number(static_cast<int32_t>(sample.pid));
  out.chr(',');
  out.number(static_cast<int32_t>(sample.tid));
  out.chr(',');
  csv_field(out, row.comm);
  out.chr(',');
  csv_field(out, row.event.event_name);
  out.chr(',');
  if (row.event.lock) out.hex(*row.event.lock);
  out.chr(',');
  if (row.event.ret) out.number(*row.event.ret);
  out.chr(',');
  out.text(context_name(row.event.context));
  out.chr(',');
  out.chr(row.event.irqs_off ? '1' : '0');
  out.chr(',');
  out.number(row.stack_depth());
  out.chr(',');
  out.number(row.kernel_frames);
  out.chr(',');
  out.number(row.user_frames);
  out.chr(',');
  out.number(static_cast<unsigned>(row.event.preempt_count));
  out.chr(',');
  out.hex(row.event.common_flags);
  out.chr(',');
  out.hex(sample.ip);
  out.end_line();
}

void write_jsonl_row(LineWriter& out, const EventRow& row) {
  const perf::Sample& sample = *row.event.sample;
  out.begin_row();
  out.text("{\"time_ns\":");
  out.number(sample.time);
  out.text(",\"cpu\":");
  out.number(sample.cpu);
  out.text(",\"pid\":");
  out.number(static_cast<int32_t>(sample.pid));
  out.text(",\"tid\":");
  out.number(static_cast<int32_t>(sample.tid));
  out.text(",\"comm\":");
  json_string(out, row.comm);
  out.text(",\"event\":");
  json_string(out, row.event.event_name);
  out.text(",\"lock\":");
  if (row.event.lock) {
    out.chr('"');
    out.hex(*row.event.lock);
    out.chr('"');
  } else {
    out.text("null");
  }
  out.text(",\"ret\":");
  if (row.event.ret) {
    out.number(*row.event.ret);
  } else {
    out.text("null");
  }
  out.text(",\"context\":\"");
  out.text(context_name(row.event.context));
  out.text("\",\"irqs_off\":");
  out.text(row.event.irqs_off ? "true" : "false");
  out.text(",\"stack_depth\":");
  out.number(row.stack_depth());
  out.text(",\"kernel_frames\":");
  out.number(row.kernel_frames);
  out.text(",\"user_frames\":");
  out.number(row.user_frames);
  out.text(",\"preempt_count\":");
  out.number(static_cast<unsigned>(row.event.preempt_count));
  out.text(",\"common_flags\":");
  out.number(static_cast<unsigned>(row.event.common_flags));
  out.text(",\"ip\":\"");
  out.hex(sample.ip);
  out.text("\"}");
  out.end_line();
}

struct OutputFormat {
  std::string_view name;
  void (*header)(LineWriter&);
  void (*row)(LineWriter&, const EventRow&);
};
constexpr std::array kOutputFormats = {
    OutputFormat{"csv", write_csv_header, write_csv_row},
    OutputFormat{"jsonl", [](LineWriter&) {}, write_jsonl_row},
};


class EventsVisitor final : public perf::RecordVisitor {
 public:
  EventsVisitor(LineWriter& out, const OutputFormat& format) : out_(out), format_(format) {}

  void on_metadata(const perf::Metadata& metadata) override {
    decoder_ = std::make_unique<LockEventDecoder>(metadata);
    format_.header(out_);
  }
  void on_comm(const perf::CommRecord& comm) override { names_.set(comm.tid, comm.comm); }
  void on_fork(const perf::TaskRecord& task) override { names_.fork(task.tid, task.ptid); }
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
    EventRow row{*event, names_.get(sample.tid)};
    perf::for_each_frame(sample.callchain, [&row](uint64_t, perf::FrameContext context) {
      // Frames before any marker are the kernel's own (a callchain without markers).
      if (context == perf::FrameContext::user || context == perf::FrameContext::guest_user) {
        ++row.user_frames;
      } else {
        ++row.kernel_frames;
      }
    });
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
  LineWriter& out_;
  const OutputFormat& format_;
  std::unique_ptr<LockEventDecoder> decoder_;
  ThreadNames names_;
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

void print_summary(const perf::PerfDataReader& reader, const EventsVisitor& visitor,
                   double seconds) {
  const perf::ReadStats& stats = reader.stats();
  const perf::Metadata& metadata = reader.metadata();
  std::fprintf(stderr, "%s: %s mode, %zu events, kernel %s, host %s, read in %.3f s\n",
               reader.path() == "-" ? "<stdin>" : reader.path().c_str(),
               metadata.pipe_mode ? "pipe" : "file", metadata.events.size(),
               metadata.os_release.empty() ? "?" : metadata.os_release.c_str(),
               metadata.hostname.empty() ? "?" : metadata.hostname.c_str(), seconds);
  std::fprintf(stderr, "records by type: %s\n", join_counts(stats.records_by_type).c_str());
  std::fprintf(stderr, "samples by event: %s\n", join_counts(visitor.samples_by_event()).c_str());
  std::fprintf(stderr, "lock events: %llu; other samples skipped: %llu\n",
               static_cast<unsigned long long>(visitor.lock_events()),
               static_cast<unsigned long long>(visitor.other_samples()));
  std::fprintf(stderr,
               "lost events: %llu; lost samples: %llu; unknown records skipped: %llu; samples "
               "matching no event: %llu; out-of-order records: %llu\n",
               static_cast<unsigned long long>(stats.lost_events),
               static_cast<unsigned long long>(stats.lost_samples),
               static_cast<unsigned long long>(stats.unknown_records_skipped),
               static_cast<unsigned long long>(stats.samples_without_event),
               static_cast<unsigned long long>(stats.out_of_order_records));
  if (stats.compressed_bytes_in > 0) {
    std::fprintf(stderr, "compressed: %llu bytes decoded to %llu\n",
                 static_cast<unsigned long long>(stats.compressed_bytes_in),
                 static_cast<unsigned long long>(stats.compressed_bytes_out));
  }
  if (const LockEventDecoder* decoder = visitor.decoder()) {
    if (!decoder->has_tracing_data()) {
      std::fprintf(stderr, "warning: the recording has no tracing data: lock events cannot be "
                           "decoded (was perf killed before it wrote its header?)\n");
    }
    if (decoder->short_payloads() > 0) {
      std::fprintf(stderr, "warning: %llu lock events had payloads too short for their fields\n",
                   static_cast<unsigned long long>(decoder->short_payloads()));
    }
  }
  for (const auto& warning : stats.warnings) std::fprintf(stderr, "warning: %s\n", warning.c_str());
}

struct EventsOptions {
  std::string input;
  std::string format = "csv";
  std::string output = "-";
  std::string order = "time";
};

void run_events(const EventsOptions& options) {
  const OutputFormat* format = nullptr;
  for (const auto& candidate : kOutputFormats) {
    if (candidate.name == options.format) format = &candidate;
  }
  auto start = std::chrono::steady_clock::now();
  auto reader = perf::PerfDataReader::open(options.input);

  std::unique_ptr<FILE, int (*)(FILE*)> file(nullptr, fclose);
  FILE* out = stdout;
  if (options.output != "-") {
    file.reset(fopen(options.output.c_str(), "w"));
    if (!file) {
      throw Error("cannot open the output for writing").file(options.output)
          .hint("check the directory exists and is writable");
    }
    out = file.get();
  }
  LineWriter writer(out);
  EventsVisitor visitor(writer, *format);
  reader->read(visitor, options.order == "file" ? perf::RecordOrder::file : perf::RecordOrder::time);
  writer.flush();
  if (fflush(out) != 0) throw Error("cannot write the output").hint("is the disk full?");
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  print_summary(*reader, visitor, seconds);
}

}  // namespace

void add_events_command(CLI::App& app) {
  auto options = std::make_shared<EventsOptions>();
  CLI::App* command = app.add_subcommand(
      "events", "One row per lock event (CSV or JSON lines); a summary of the recording on stderr");
  command->add_option("file", options->input, "perf.data recording, or - for a pipe-mode stream")
      ->required();
  std::vector<std::string> names;
  for (const auto& format : kOutputFormats) names.emplace_back(format.name);
  command->add_option("--format", options->format, "Output format")
      ->check(CLI::IsMember(names))
      ->capture_default_str();
  command->add_option("-o,--output", options->output, "Write rows here instead of stdout");
  command
      ->add_option("--order", options->order,
                   "time: rows in time order as perf script shows them, with each thread's comm "
                   "at that moment; file: rows in the order they were written")
      ->check(CLI::IsMember({"time", "file"}))
      ->capture_default_str();
  command->callback([options] { run_events(*options); });
}

}  // namespace lockscope::cli
