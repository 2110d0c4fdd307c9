// Unit tests of the perf.data reader on recordings built in memory: each mode, each sample field,
// compression, trailers, ordering, and malformed input.
#include <catch2/catch.hpp>

#include <unistd.h>
#include <algorithm>
#include <thread>

#include "example_recordings.hpp"
#include "lockscope/error.hpp"
#include "lockscope/lock_events.hpp"
#include "lockscope/perf_data.hpp"
#include "lockscope/trace_formats.hpp"
#include "perf_data_builder.hpp"

using namespace lockscope;
using namespace lockscope::testing;

namespace {

struct DecodedSample {
  std::string event;
  uint32_t pid, tid, cpu;
  uint64_t time, ip;
  std::vector<uint64_t> callchain;
  std::optional<uint64_t> lock;
  std::optional<int64_t> ret;
  ExecContext context;
  bool irqs_off;
};

// Collects everything the reader reports, decoding lock events as the events command does.
class Collector : public perf::RecordVisitor {
 public:
  void on_metadata(const perf::Metadata& metadata) override {
    ++metadata_calls;
    decoder = std::make_unique<LockEventDecoder>(metadata);
  }
  void on_sample(const perf::Sample& sample) override {
    DecodedSample out{};
    out.pid = sample.pid;
    out.tid = sample.tid;
    out.cpu = sample.cpu;
    out.time = sample.time;
    out.ip = sample.ip;
    for (uint64_t i = 0; i < sample.callchain.size(); ++i) out.callchain.push_back(sample.callchain[i]);
    out.event = decoder->event_name(sample.event->index);
    if (const LockEvent* event = decoder->decode(sample)) {
      out.lock = event->lock;
      out.ret = event->ret;
      out.context = event->context;
      out.irqs_off = event->irqs_off;
    }
    samples.push_back(out);
    last_raw_size = sample.raw.size();
    last_period = sample.period;
    last_addr = sample.addr;
    last_stream_id = sample.stream_id;
  }
  void on_comm(const perf::CommRecord& comm) override {
    comms.push_back({comm.tid, std::string(comm.comm), comm.exec, comm.sample_id.time, comm.sample_id.cpu});
  }
  void on_fork(const perf::TaskRecord& task) override { forks.push_back(task.tid); }
  void on_exit(const perf::TaskRecord& task) override { exits.push_back(task.tid); }
  void on_mmap(const perf::MmapRecord& map) override {
    maps.push_back({std::string(map.filename), map.pgoff, map.kernel});
  }
  void on_lost(const perf::LostRecord& lost) override { lost_total += lost.lost; }

  struct Comm {
    uint32_t tid;
    std::string comm;
    bool exec;
    uint64_t time;
    uint32_t cpu;
  };
  struct Map {
    std::string name;
    uint64_t pgoff;
    bool kernel;
  };
  std::unique_ptr<LockEventDecoder> decoder;
  std::vector<DecodedSample> samples;
  std::vector<Comm> comms;
  std::vector<uint32_t> forks, exits;
  std::vector<Map> maps;
  uint64_t lost_total = 0;
  size_t last_raw_size = 0;
  uint64_t last_period = 0, last_addr = 0, last_stream_id = 0;
  int metadata_calls = 0;
};

Collector read_all(const std::string& path, perf::RecordOrder order = perf::RecordOrder::time) {
  auto reader = perf::PerfDataReader::open(path);
  Collector collector;
  reader->read(collector, order);
  return collector;
}

void check_lock_recording(const Collector& c) {
  REQUIRE(c.samples.size() == 3);
  const auto& spin = c.samples[0];
  CHECK(spin.event == "probe:_raw_spin_lock");
  CHECK(spin.pid == 100);
  CHECK(spin.tid == 100);
  CHECK(spin.cpu == 1);
  CHECK(spin.time == 2000);
  CHECK(spin.ip == 0xffffffff81a59b40);
  CHECK(spin.callchain.size() == 5);
  CHECK(spin.callchain[4] == 0x401000);
  REQUIRE(spin.lock);
  CHECK(*spin.lock == 0xffffffff83f84768);
  CHECK_FALSE(spin.ret);
  CHECK(spin.context == ExecContext::hardirq);
  CHECK(spin.irqs_off);

  const auto& trylock = c.samples[1];
  CHECK(trylock.event == "probe:_raw_spin_trylock__return");
  CHECK_FALSE(trylock.lock);
  REQUIRE(trylock.ret);
  CHECK(*trylock.ret == 1);
  CHECK(trylock.context == ExecContext::softirq);
  CHECK_FALSE(trylock.irqs_off);

  const auto& begin = c.samples[2];
  CHECK(begin.event == "lock:contention_begin");
  REQUIRE(begin.lock);
  CHECK(*begin.lock == 0xffffffff83008080);
  CHECK(begin.context == ExecContext::task);

  REQUIRE(c.comms.size() == 1);
  CHECK(c.comms[0].comm == "unshare");
  CHECK(c.comms[0].exec);
  CHECK(c.comms[0].time == 1000);
  CHECK(c.forks == std::vector<uint32_t>{101});
  REQUIRE(c.maps.size() == 1);
  CHECK(c.maps[0].name == "[kernel.kallsyms]_text");
  CHECK(c.maps[0].pgoff == 0xffffffffae200000);
  CHECK(c.maps[0].kernel);
  CHECK(c.lost_total == 7);
  CHECK(c.metadata_calls == 1);
}

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

std::string read_error(const ByteVector& bytes) {
  std::string path = write_temp_file(bytes);
  return error_of([&] { read_all(path); });
}

perf_event_header load_header(const ByteVector& bytes, uint64_t offset) {
  perf_event_header header;
  REQUIRE(offset + sizeof header <= bytes.size());
  std::memcpy(&header, bytes.data() + offset, sizeof header);
  REQUIRE(header.size >= sizeof header);
  return header;
}

struct PipeRead {
  std::unique_ptr<perf::PerfDataReader> reader;
  Collector collector;
};

// Reads the bytes in time order through a real pipe that another thread fills `chunk` bytes at a
// time: small writes make the reader assemble records across reads.
PipeRead read_through_pipe(const ByteVector& bytes, size_t chunk) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::thread writer([&] {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fds[1], bytes.data() + done, std::min<size_t>(chunk, bytes.size() - done));
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::close(fds[1]);
  });
  PipeRead out;
  out.reader = perf::PerfDataReader::open_stream(fds[0], "<pipe>");
  out.reader->read(out.collector, perf::RecordOrder::time);
  writer.join();
  ::close(fds[0]);
  return out;
}

}  // namespace

TEST_CASE("file mode: header, features, samples, trailers") {
  PerfDataBuilder builder = example_lock_recording();
  std::string path = write_temp_file(builder.file_mode());
  auto reader = perf::PerfDataReader::open(path);
  const perf::Metadata& metadata = reader->metadata();
  CHECK_FALSE(metadata.pipe_mode);
  REQUIRE(metadata.events.size() == 3);
  CHECK(metadata.events[0].name == "probe:_raw_spin_lock");
  CHECK(metadata.events[0].ids == std::vector<uint64_t>{11, 12});
  CHECK(metadata.hostname == "testhost");
  CHECK(metadata.os_release == "6.1.0-test");
  REQUIRE(metadata.build_ids.size() == 1);
  CHECK(metadata.build_ids[0].filename == "[kernel.kallsyms]");
  CHECK(metadata.build_ids[0].build_id_hex == "eb4fbcd0112233445566778899aabbccddeeff00");
  Collector collector;
  reader->read(collector, perf::RecordOrder::file);
  check_lock_recording(collector);
  CHECK(reader->stats().records_by_type.at("SAMPLE") == 3);
  CHECK(reader->stats().lost_events == 7);

  auto info = perf::read_kernel_image_info(path);
  CHECK(info.has_text_address);
  CHECK(info.text_address == 0xffffffffae200000);
  CHECK(info.build_id_hex == "eb4fbcd0112233445566778899aabbccddeeff00");
  CHECK(info.os_release == "6.1.0-test");
}

TEST_CASE("pipe mode from a pipe and from a saved file") {
  PerfDataBuilder builder = example_lock_recording();
  ByteVector bytes = builder.pipe_mode();

  SECTION("saved to a file") { check_lock_recording(read_all(write_temp_file(bytes))); }

  SECTION("through a real pipe") {
    PipeRead read = read_through_pipe(bytes, 37);
    check_lock_recording(read.collector);
    CHECK(read.reader->metadata().pipe_mode);
    CHECK(read.reader->metadata().hostname == "testhost");
    // Pipe mode has no EVENT_DESC: names come from the trace formats.
    CHECK(read.collector.decoder->event_name(0) == "probe:_raw_spin_lock");
  }
}

TEST_CASE("zstd-compressed records, straddling payloads, in file and pipe mode") {
  PerfDataBuilder builder = example_lock_recording();
  for (size_t chunk : {17, 64, 1000}) {
    INFO("chunk " << chunk);
    check_lock_recording(read_all(write_temp_file(builder.file_mode(true, chunk))));
    check_lock_recording(read_all(write_temp_file(builder.pipe_mode(true, chunk))));
  }
}

TEST_CASE("every sample_type field is laid out in kernel order") {
  PerfDataBuilder builder;
  builder.set_tracing_data(
      tracing_data({{"probe", {kprobe_format("_raw_spin_lock", kSpinLockId, {"__probe_ip", "lock"})}}}));
  builder.add_event(every_sample_field_attr(), "probe:_raw_spin_lock", {5});
  SampleFields f = every_sample_field_sample();
  const SampleFields first = f;
  builder.sample(0, f);
  // A second sample right after proves the first one's size was walked exactly.
  f.time = 100;
  builder.sample(0, f);

  Collector c = read_all(write_temp_file(builder.file_mode()), perf::RecordOrder::file);
  REQUIRE(c.samples.size() == 2);
  CHECK(c.samples[0].ip == first.ip);
  CHECK(c.samples[0].pid == first.pid);
  CHECK(c.samples[0].tid == first.tid);
  CHECK(c.samples[0].time == first.time);
  CHECK(c.samples[0].cpu == first.cpu);
  CHECK(c.samples[1].time == 100);
  CHECK(c.last_period == first.period);
  CHECK(c.last_addr == first.addr);
  CHECK(c.last_stream_id == first.stream_id);
  CHECK(c.samples[0].callchain == first.callchain);
  REQUIRE(c.samples[1].lock);
  CHECK(*c.samples[1].lock == 0xffffffff82b27f58);
}

TEST_CASE("callchains split into kernel and user frames at the context markers") {
  std::vector<uint64_t> ips = {kContextKernel, 0xffffffff81000001, 0xffffffff81000002, kContextUser, 0x401000, 0x402000,
                               0x403000};
  ByteWriter raw;
  for (uint64_t ip : ips) raw.put(ip);
  perf::Callchain chain(raw.bytes.data(), ips.size());
  std::vector<std::pair<uint64_t, perf::FrameContext>> frames;
  perf::for_each_frame(chain,
                       [&](uint64_t address, perf::FrameContext context) { frames.emplace_back(address, context); });
  REQUIRE(frames.size() == 5);
  CHECK(frames[0] == std::pair{uint64_t{0xffffffff81000001}, perf::FrameContext::kernel});
  CHECK(frames[1].second == perf::FrameContext::kernel);
  CHECK(frames[2] == std::pair{uint64_t{0x401000}, perf::FrameContext::user});
  CHECK(frames[4].second == perf::FrameContext::user);
}

TEST_CASE("samples found by ID when there is no IDENTIFIER") {
  PerfDataBuilder builder;
  builder.set_tracing_data(
      tracing_data({{"lock", {contention_begin_format(kBeginId), contention_end_format(kEndId)}}}));
  uint64_t type =
      PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_ID | PERF_SAMPLE_CPU | PERF_SAMPLE_RAW;
  builder.add_event(tracepoint_attr(kBeginId, type), "lock:contention_begin", {21});
  builder.add_event(tracepoint_attr(kEndId, type), "lock:contention_end", {22});
  SampleFields f;
  f.time = 5;
  ByteWriter end_payload;
  end_payload.put_bytes(trace_payload(kEndId, 0, 0, 1, {0xffff888000001000}));
  end_payload.put<int32_t>(-4);
  f.raw = end_payload.bytes;
  builder.sample(1, f);
  Collector c = read_all(write_temp_file(builder.file_mode()));
  REQUIRE(c.samples.size() == 1);
  CHECK(c.samples[0].event == "lock:contention_end");
  CHECK(*c.samples[0].ret == -4);
  CHECK(*c.samples[0].lock == 0xffff888000001000);
}

// The reader indexes a table by id when the ids span little (as perf numbers them) and searches
// a sorted list when they do not; both must find the same events and miss the same ids.
TEST_CASE("samples are matched to events by id whether the ids span little or much") {
  for (uint64_t far_id : {uint64_t{40}, uint64_t{1} << 40}) {
    INFO("far id " << far_id);
    PerfDataBuilder builder;
    builder.set_tracing_data(
        tracing_data({{"lock", {contention_begin_format(kBeginId), contention_end_format(kEndId)}}}));
    builder.add_event(tracepoint_attr(kBeginId, kLockSampleType), "lock:contention_begin", {far_id, 3});
    builder.add_event(tracepoint_attr(kEndId, kLockSampleType), "lock:contention_end", {5});
    builder.add_event(tracepoint_attr(kEndId, kLockSampleType), "lock:contention_end", {});
    SampleFields f;
    f.raw = trace_payload(kBeginId, 0, 0, 1, {0xffff888000001000});
    for (size_t event : {0, 1, 2, 0}) {
      f.time += 10;
      builder.sample(event, f);  // the event's first id; none for the third event
    }
    std::string path = write_temp_file(builder.file_mode());
    auto reader = perf::PerfDataReader::open(path);
    Collector c;
    reader->read(c, perf::RecordOrder::file);
    REQUIRE(c.samples.size() == 3);
    CHECK(c.samples[0].event == "lock:contention_begin");
    CHECK(c.samples[1].event == "lock:contention_end");
    CHECK(c.samples[2].event == "lock:contention_begin");
    CHECK(reader->stats().samples_without_event == 1);
    // In pipe mode the attrs arrive one record at a time, and the table is built after the last.
    PipeRead piped = read_through_pipe(builder.pipe_mode(), 4096);
    REQUIRE(piped.collector.samples.size() == 3);
    CHECK(piped.collector.samples[0].event == "lock:contention_begin");
    CHECK(piped.collector.samples[1].event == "lock:contention_end");
    CHECK(piped.collector.samples[2].event == "lock:contention_begin");
    CHECK(piped.reader->stats().samples_without_event == 1);
  }
}

TEST_CASE("time order follows perf's rounds, file order keeps the bytes' order") {
  PerfDataBuilder builder = example_lock_recording();
  // Round 2: a COMM for tid 100 older than the next round's sample, written after it.
  SampleFields late;
  late.pid = late.tid = 100;
  late.time = 7000;
  late.raw = trace_payload(kSpinLockId, 0, 0, 100, {0, 0x1000});
  late.callchain = {};
  builder.sample(0, late);
  builder.comm(100, 100, "renamed", false, {100, 100, 6000, 0});
  builder.finished_round();
  builder.finished_round();
  std::string path = write_temp_file(builder.file_mode());

  Collector in_time = read_all(path, perf::RecordOrder::time);
  Collector in_file = read_all(path, perf::RecordOrder::file);
  REQUIRE(in_time.samples.size() == 4);
  REQUIRE(in_file.samples.size() == 4);
  for (size_t i = 1; i < in_time.samples.size(); ++i) {
    CHECK(in_time.samples[i - 1].time <= in_time.samples[i].time);
  }
  CHECK(in_time.comms.back().comm == "renamed");
}

// Rounds far larger than the reader's buffer: the records held for time order must survive the
// buffer being refilled, moved and grown, in every mode (compressed records take another path).
TEST_CASE("time order holds rounds larger than the read buffer intact") {
  PerfDataBuilder builder = example_lock_recording();
  constexpr uint64_t kPerCpu = 4000;  // about 100 bytes each: 800 KB a round
  uint64_t next_time = 10000;
  for (int round = 0; round < 3; ++round) {
    // Two CPUs' buffers one after the other, each in time order, interleaved in time.
    for (uint32_t cpu = 0; cpu < 2; ++cpu) {
      for (uint64_t i = 0; i < kPerCpu; ++i) {
        SampleFields fields;
        fields.pid = fields.tid = 100;
        fields.cpu = cpu;
        fields.time = next_time + 2 * i + cpu;
        fields.callchain = {kContextKernel, 0xffffffff81000000 + fields.time};
        fields.raw = trace_payload(kSpinLockId, 0, 0, 100, {0, fields.time * 16});
        builder.sample(0, fields);
      }
    }
    next_time += 2 * kPerCpu;
    builder.finished_round();
  }
  auto check = [](const Collector& c) {
    REQUIRE(c.samples.size() == 3 + kPerCpu * 2 * 3);
    for (size_t i = 3; i < c.samples.size(); ++i) {
      const DecodedSample& sample = c.samples[i];
      INFO("sample " << i);
      REQUIRE(sample.time == 10000 + (i - 3));
      REQUIRE(sample.lock);
      CHECK(*sample.lock == sample.time * 16);
      REQUIRE(sample.callchain.size() == 2);
      CHECK(sample.callchain[1] == 0xffffffff81000000 + sample.time);
    }
  };
  SECTION("file mode") { check(read_all(write_temp_file(builder.file_mode()))); }
  SECTION("file mode, compressed") { check(read_all(write_temp_file(builder.file_mode(true)))); }
  SECTION("pipe mode saved to a file") { check(read_all(write_temp_file(builder.pipe_mode()))); }
  SECTION("through a real pipe") { check(read_through_pipe(builder.pipe_mode(), 4099).collector); }
}

// Each round holds one run per CPU (its ring buffer, in time order) plus what the previous round
// left over: the queue merges these runs. Times collide within a run, across runs and with held
// records; records with equal times must come out in file order, as perf script shows them. Every
// round overlaps the previous one only, so the output is all records stably sorted by time.
TEST_CASE("time order merges each round's runs, equal times in file order") {
  PerfDataBuilder builder = example_lock_recording();
  struct Written {
    uint64_t time, lock;
  };
  std::vector<Written> written;
  uint64_t random = 12345;
  auto next_random = [&] {
    random = random * 6364136223846793005ull + 1442695040888963407ull;
    return random >> 33;
  };
  for (uint64_t round = 0; round < 40; ++round) {
    // Round r's times lie in [10000 + 100 r, 10000 + 100 r + 150): the next round overlaps its
    // last third, the one after does not reach it.
    uint32_t cpus = 1 + round % 5;  // 1 to 5 runs, and an odd count left over when merging pairs
    for (uint32_t cpu = 0; cpu < cpus; ++cpu) {
      std::vector<uint64_t> times(next_random() % 30);
      for (uint64_t& time : times) time = 10000 + 100 * round + next_random() % 150 / 8 * 8;
      std::sort(times.begin(), times.end());
      for (uint64_t time : times) {
        SampleFields fields;
        fields.pid = fields.tid = 100;
        fields.cpu = cpu;
        fields.time = time;
        fields.callchain = {};
        uint64_t lock = 16 * (written.size() + 1);
        fields.raw = trace_payload(kSpinLockId, 0, 0, 100, {0, lock});
        builder.sample(0, fields);
        written.push_back({time, lock});
      }
    }
    builder.finished_round();
  }
  std::stable_sort(written.begin(), written.end(), [](const Written& a, const Written& b) { return a.time < b.time; });
  auto check = [&](const Collector& c) {
    REQUIRE(c.samples.size() == 3 + written.size());
    for (size_t i = 0; i < written.size(); ++i) {
      const DecodedSample& sample = c.samples[3 + i];
      INFO("sample " << i);
      CHECK(sample.time == written[i].time);
      REQUIRE(sample.lock);
      CHECK(*sample.lock == written[i].lock);
    }
  };
  SECTION("file mode") { check(read_all(write_temp_file(builder.file_mode()))); }
  SECTION("file mode, compressed") { check(read_all(write_temp_file(builder.file_mode(true)))); }
  SECTION("through a real pipe") { check(read_through_pipe(builder.pipe_mode(), 4099).collector); }
}

// zstd decodes a block into its own window when the output buffer has less room than the block,
// and returns once the input is consumed even if part of the block is still inside. A payload
// that decodes to more than the reader's buffer must be drained to the end, or the recording's
// last records vanish without a word (found on a live recording: its last 33 samples).
TEST_CASE("a compressed payload that decodes to more than the buffer is drained to its end") {
  // About 100 bytes a sample: 120 to 360 KB, one to four times the buffer, so that some payload
  // ends with a block that does not fit.
  for (uint64_t samples = 1200; samples <= 3600; samples += 300) {
    INFO(samples << " samples");
    PerfDataBuilder builder = example_lock_recording();
    for (uint64_t i = 0; i < samples; ++i) {
      SampleFields fields;
      fields.pid = fields.tid = 100;
      fields.time = 10000 + i;
      fields.callchain = {kContextKernel, 0xffffffff81000000 + i};
      fields.raw = trace_payload(kSpinLockId, 0, 0, 100, {0, fields.time * 16});
      builder.sample(0, fields);
    }
    builder.finished_round();
    auto check = [&](const Collector& c) {
      REQUIRE(c.samples.size() == 3 + samples);
      CHECK(c.samples.back().time == 10000 + samples - 1);
    };
    // All records in one payload, the last one of the stream.
    constexpr size_t kOnePayload = 1 << 20;
    check(read_all(write_temp_file(builder.file_mode(true, kOnePayload))));
    check(read_all(write_temp_file(builder.pipe_mode(true, kOnePayload))));
  }
}

TEST_CASE("unknown record types are skipped by size and counted") {
  PerfDataBuilder builder = example_lock_recording();
  builder.raw_record(120, 0, ByteVector(24, std::byte{0x77}));
  builder.raw_record(PERF_RECORD_TEXT_POKE, 0, ByteVector(40, std::byte{0}));
  std::string path = write_temp_file(builder.file_mode());
  auto reader = perf::PerfDataReader::open(path);
  Collector collector;
  reader->read(collector);
  CHECK(collector.samples.size() == 3);
  CHECK(reader->stats().unknown_records_skipped == 1);
}

TEST_CASE("a header with data size 0 (perf killed) is read to its last whole record") {
  PerfDataBuilder builder = example_lock_recording();
  ByteVector bytes = builder.file_mode();
  // Zero the data size and cut the file inside the features, as a killed perf leaves it.
  uint64_t data_offset, data_size;
  std::memcpy(&data_offset, bytes.data() + 40, 8);
  std::memcpy(&data_size, bytes.data() + 48, 8);
  std::memset(bytes.data() + 48, 0, 8);
  bytes.resize(data_offset + data_size - 5);  // the last record (FINISHED_ROUND) is cut
  auto reader = perf::PerfDataReader::open(write_temp_file(bytes));
  Collector collector;
  reader->read(collector);
  CHECK(collector.samples.size() == 3);
  CHECK(reader->metadata().data_size_was_zero);
  REQUIRE(reader->stats().damage.size() == 2);
  CHECK_THAT(reader->stats().damage[0], Catch::Contains("data section is empty"));
  CHECK_THAT(reader->stats().damage[1], Catch::Contains("partial record at offset"));
}

TEST_CASE("a file cut short is read up to the cut, and the damage says where") {
  ByteVector whole = example_lock_recording().file_mode();
  uint64_t data_offset, data_size;
  std::memcpy(&data_offset, whole.data() + 40, 8);
  std::memcpy(&data_size, whole.data() + 48, 8);
  auto read_cut = [&](uint64_t size, Collector& collector) {
    auto reader =
        perf::PerfDataReader::open(write_temp_file(ByteVector(whole.begin(), whole.begin() + static_cast<long>(size))));
    reader->read(collector, perf::RecordOrder::file);
    return reader;
  };

  SECTION("by its last byte: the last feature section is skipped, the rest is whole") {
    Collector collector;
    auto reader = read_cut(whole.size() - 1, collector);
    CHECK(collector.samples.size() == 3);
    CHECK_FALSE(reader->metadata().tracing_data.empty());
    REQUIRE(reader->stats().damage.size() == 1);
    CHECK_THAT(reader->stats().damage[0],
               Catch::Contains("runs past the end of the file (" + std::to_string(whole.size() - 1) + " bytes)"));
  }
  SECTION("a feature section that points outside the file is skipped, the others are read") {
    ByteVector bad = whole;
    uint64_t huge = 1ull << 62;
    std::memcpy(bad.data() + data_offset + data_size, &huge, 8);  // the first: TRACING_DATA
    auto reader = perf::PerfDataReader::open(write_temp_file(bad));
    Collector collector;
    reader->read(collector);
    CHECK(collector.samples.size() == 3);
    CHECK(reader->metadata().tracing_data.empty());
    CHECK_FALSE(reader->metadata().events.front().name.empty());  // EVENT_DESC was read
    REQUIRE(reader->stats().damage.size() == 1);
    CHECK_THAT(reader->stats().damage[0], Catch::Contains("feature section TRACING_DATA [4611686018427387904, +"));
  }
  SECTION("inside the feature section table: no features, every record") {
    Collector collector;
    auto reader = read_cut(data_offset + data_size + 8, collector);
    CHECK(collector.samples.size() == 3);
    CHECK(reader->metadata().tracing_data.empty());
    REQUIRE(reader->stats().damage.size() == 1);
    CHECK_THAT(reader->stats().damage[0], Catch::Contains("inside the table of its"));
    CHECK_THAT(reader->stats().damage[0], Catch::Contains("at " + std::to_string(data_offset + data_size)));
  }
  SECTION("inside the data section: the whole records before the cut") {
    // Cut the last of the three samples in its middle: the two before it are read.
    uint64_t last_sample = 0;
    for (uint64_t offset = data_offset; offset < data_offset + data_size; offset += load_header(whole, offset).size) {
      if (load_header(whole, offset).type == PERF_RECORD_SAMPLE) last_sample = offset;
    }
    REQUIRE(last_sample != 0);
    uint64_t cut = last_sample + load_header(whole, last_sample).size / 2;
    Collector collector;
    auto reader = read_cut(cut, collector);
    CHECK(collector.samples.size() == 2);
    CHECK(reader->metadata().data_cut_short);
    REQUIRE(reader->stats().damage.size() == 2);
    CHECK_THAT(reader->stats().damage[0],
               Catch::Contains("the file ends at byte " + std::to_string(cut) + ", " +
                               std::to_string(data_offset + data_size - cut) + " bytes before the end"));
    CHECK_THAT(reader->stats().damage[1], Catch::Contains("partial record at offset " + std::to_string(last_sample)));
  }
}

TEST_CASE("malformed input is one error naming the offset") {
  PerfDataBuilder builder = example_lock_recording();
  ByteVector good = builder.file_mode();
  uint64_t data_offset;
  std::memcpy(&data_offset, good.data() + 40, 8);

  SECTION("empty and truncated headers") {
    CHECK_THAT(read_error({}), Catch::Contains("offset 0"));
    CHECK_THAT(read_error(ByteVector(good.begin(), good.begin() + 50)), Catch::Contains("file header"));
  }
  SECTION("not perf.data, and the other byte order") {
    ByteVector text(200, std::byte{'x'});
    CHECK_THAT(read_error(text), Catch::Contains("not a perf.data file"));
    ByteVector swapped = good;
    std::reverse(swapped.begin(), swapped.begin() + 8);
    CHECK_THAT(read_error(swapped), Catch::Contains("other byte order"));
  }
  SECTION("an attr whose size lies") {
    ByteVector bad = good;
    uint64_t attrs_offset;
    std::memcpy(&attrs_offset, bad.data() + 24, 8);
    uint32_t lie = 4000;
    std::memcpy(bad.data() + attrs_offset + 4, &lie, 4);
    std::string error = read_error(bad);
    CHECK_THAT(error, Catch::Contains("attr.size 4000"));
    CHECK_THAT(error, Catch::Contains("offset " + std::to_string(attrs_offset + 4)));
  }
  SECTION("record size 0 and record past the end") {
    ByteVector zero = good;
    uint16_t size = 0;
    uint64_t first_record = data_offset;
    std::memcpy(zero.data() + first_record + 6, &size, 2);
    std::string error = read_error(zero);
    CHECK_THAT(error, Catch::Contains("smaller than its header"));
    CHECK_THAT(error, Catch::Contains("offset " + std::to_string(first_record)));
    ByteVector past = good;
    size = 0xfff0;
    std::memcpy(past.data() + first_record + 6, &size, 2);
    CHECK_THAT(read_error(past), Catch::Contains("past the end of the data"));
  }
  SECTION("a callchain count that runs past the sample") {
    PerfDataBuilder huge;
    huge.set_tracing_data(
        tracing_data({{"probe", {kprobe_format("_raw_spin_lock", kSpinLockId, {"__probe_ip", "lock"})}}}));
    huge.add_event(tracepoint_attr(kSpinLockId, kLockSampleType), "probe:_raw_spin_lock", {1});
    ByteWriter body;
    body.put<uint64_t>(1);                   // identifier
    body.put<uint64_t>(0);                   // ip
    body.put<uint64_t>(0);                   // pid, tid
    body.put<uint64_t>(0);                   // time
    body.put<uint64_t>(0);                   // cpu
    body.put<uint64_t>(1);                   // period
    body.put<uint64_t>(0x2000000000000000);  // callchain nr: huge
    huge.raw_record(PERF_RECORD_SAMPLE, 0, body.bytes);
    std::string error = read_error(huge.file_mode());
    CHECK_THAT(error, Catch::Contains("callchain entries"));
    CHECK_THAT(error, Catch::Contains("PERF_RECORD_SAMPLE"));
  }
  SECTION("tracing data cut short") {
    PerfDataBuilder cut = example_lock_recording();
    ByteVector blob = tracing_data({{"probe", {kprobe_format("_raw_spin_lock", kSpinLockId, {"__probe_ip", "lock"})}}});
    blob.resize(blob.size() / 2);
    cut.set_tracing_data(blob);
    std::string error = read_error(cut.file_mode());
    CHECK_THAT(error, Catch::Contains("tracing data"));
    CHECK_THAT(error, Catch::Contains("offset"));
  }
  SECTION("bad zstd") {
    PerfDataBuilder zstd = example_lock_recording();
    ByteVector bytes = zstd.file_mode(true, 64);
    // Corrupt the first compressed payload's frame magic.
    bytes[data_offset + 8] = std::byte{0};
    bytes[data_offset + 9] = std::byte{0};
    std::string error = read_error(bytes);
    CHECK_THAT(error, Catch::Contains("zstd"));
    CHECK_THAT(error, Catch::Contains("offset " + std::to_string(data_offset)));
  }
  SECTION("a compressed record inside the compressed stream") {
    // Decoding it would feed the zstd stream from its own output buffer: refused, with the offset
    // of the outer record.
    ByteVector compressed = example_lock_recording().file_mode(true, 64);
    uint16_t first_size;
    std::memcpy(&first_size, compressed.data() + data_offset + 6, 2);
    ByteVector payload(compressed.begin() + static_cast<long>(data_offset) + 8,
                       compressed.begin() + static_cast<long>(data_offset) + first_size);
    PerfDataBuilder nested = example_lock_recording();
    nested.raw_record(81, 0, payload);  // PERF_RECORD_COMPRESSED
    std::string error = read_error(nested.file_mode(true, 64));
    CHECK_THAT(error, Catch::Contains("a compressed record inside the compressed stream"));
    CHECK_THAT(error, Catch::Contains("PERF_RECORD_COMPRESSED"));
    CHECK_THAT(error, Catch::Contains("offset "));
  }
  SECTION("events whose samples cannot be told apart") {
    PerfDataBuilder mixed;
    mixed.add_event(tracepoint_attr(kBeginId, PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_RAW), "lock:contention_begin", {1});
    mixed.add_event(tracepoint_attr(kEndId, PERF_SAMPLE_IP | PERF_SAMPLE_RAW), "lock:contention_end", {2});
    ByteVector bytes = mixed.file_mode();
    uint64_t attrs_offset;
    std::memcpy(&attrs_offset, bytes.data() + 24, 8);
    std::string error = read_error(bytes);
    CHECK_THAT(error, Catch::Contains("expected ID or IDENTIFIER"));
    CHECK_THAT(error, Catch::Contains("offset " + std::to_string(attrs_offset) + " "));
  }
  SECTION("in pipe mode, the error names the HEADER_ATTR record that broke the rule") {
    PerfDataBuilder mixed;
    for (uint64_t id : {1, 2}) {
      mixed.add_event(tracepoint_attr(kBeginId, PERF_SAMPLE_IDENTIFIER | PERF_SAMPLE_RAW), "lock:contention_begin",
                      {id});
    }
    mixed.add_event(tracepoint_attr(kEndId, PERF_SAMPLE_IP | PERF_SAMPLE_RAW), "lock:contention_end", {3});
    ByteVector bytes = mixed.pipe_mode();
    uint64_t offset = 16, third_attr = 0;
    for (int attrs_seen = 0; attrs_seen < 3; offset += load_header(bytes, offset).size) {
      if (load_header(bytes, offset).type == 64 && ++attrs_seen == 3) third_attr = offset;
    }
    std::string error = read_error(bytes);
    CHECK_THAT(error, Catch::Contains("expected ID or IDENTIFIER"));
    CHECK_THAT(error, Catch::Contains("offset " + std::to_string(third_attr) + " "));
  }
}

// Found by the fuzzer: the error context of an MMAP record pointed at a freed temporary.
TEST_CASE("an MMAP file name without its NUL is an error naming the record") {
  PerfDataBuilder builder = example_lock_recording();
  ByteWriter body;
  body.put<uint32_t>(1);
  body.put<uint32_t>(1);
  body.put<uint64_t>(0x1000);
  body.put<uint64_t>(0x1000);
  body.put<uint64_t>(0);
  body.put_text("/usr/lib/libc.so");  // 16 bytes, no NUL, then the trailer
  ByteWriter trailer;
  for (int i = 0; i < 6; ++i) trailer.put<uint64_t>(0x4141414141414141);
  body.put_bytes(trailer.bytes);
  builder.raw_record(PERF_RECORD_MMAP, 0, body.bytes);
  std::string error = read_error(builder.file_mode());
  CHECK_THAT(error, Catch::Contains("PERF_RECORD_MMAP: the mapped file name is not NUL-terminated"));
}

TEST_CASE("a lock event whose payload is too short is counted, not read past") {
  PerfDataBuilder builder;
  builder.set_tracing_data(
      tracing_data({{"probe", {kprobe_format("_raw_spin_lock", kSpinLockId, {"__probe_ip", "lock"})}}}));
  builder.add_event(tracepoint_attr(kSpinLockId, kLockSampleType), "probe:_raw_spin_lock", {1});
  SampleFields f;
  f.raw = trace_payload(kSpinLockId, 0, 0, 1, {});  // no __probe_ip, no lock
  builder.sample(0, f);
  Collector c = read_all(write_temp_file(builder.file_mode()));
  REQUIRE(c.samples.size() == 1);
  CHECK_FALSE(c.samples[0].lock);
  CHECK(c.decoder->short_payloads() == 1);
}

// Found by fuzzing: libtraceevent 1.7 dereferences a NULL token when a field's "[" is followed by
// a byte that is not printable text (a NUL, then 0x80). Such a format is reported as unparsed, and
// the formats around it still parse.
TEST_CASE("an event format with a byte that is not printable text is unparsed, not handed to libtraceevent") {
  char byte = GENERATE('\0', '\x01', '\x1f', '\x7f', '\x80', '\xff');
  INFO("byte " << int(static_cast<unsigned char>(byte)));
  std::string broken = contention_begin_format(kBeginId);
  size_t field = broken.find("lock_addr;");
  REQUIRE(field != std::string::npos);
  broken.replace(field, 0, std::string("a[") + byte);
  ByteVector blob = tracing_data({{"lock", {broken, contention_end_format(kEndId)}}});
  auto formats = perf::TraceFormats::parse(blob, 0);
  REQUIRE(formats->unparsed().size() == 1);
  CHECK(formats->unparsed()[0] == "lock:contention_begin");
  CHECK(formats->find(kBeginId) == nullptr);
  REQUIRE(formats->find(kEndId) != nullptr);
  CHECK(formats->find(kEndId)->field("ret").found);
}
