// Scenario tests of offline lockdep on recordings built in memory: each of lockdep's rules with a
// case that must be found and one that must not.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>
#include <sstream>

#include "lock_event_feed.hpp"
#include "lockdep.hpp"
#include "recording.hpp"
#include "report_output.hpp"

using namespace lockscope;
using namespace lockscope::testing;
using lockdep::FindingKind;

namespace {

constexpr uint64_t kLockA = 0xffffffffc0a01078, kLockB = 0xffffffffc0a01074, kLockC = 0xffffffffc0a01070;
constexpr uint64_t kCaller = 0xffffffffc0a00010;
// Call sites of lockscope_lockdep.ko's ABBA pair: each order is taken by its own function.
constexpr uint64_t kCallerAB = 0xffffffffc0a00110, kCallerBA = 0xffffffffc0a00210;

// Reads the recording into a lockdep replay (and the sharing model, which names the holders).
struct Replayed {
  model::HolderModel model{model::Options{}};
  lockdep::LockdepReplay replay;
};

std::unique_ptr<Replayed> replay(Recording& rec) {
  auto out = std::make_unique<Replayed>();
  LockEventFeed both({&out->model, &out->replay});
  rec.read_into(both);
  both.finish();
  out->replay.finish(&out->model);
  return out;
}

std::vector<FindingKind> kinds(const lockdep::LockdepReplay& replay) {
  std::vector<FindingKind> out;
  for (const auto& finding : replay.findings()) out.push_back(finding.kind);
  return out;
}

std::vector<uint64_t> lock_addresses(const lockdep::Finding& finding) {
  std::vector<uint64_t> out;
  for (const auto& lock : finding.locks) out.push_back(lock.address);
  return out;
}

// Named probe shorthands: lock and unlock of a spinlock by a task with interrupts on.
void spin_lock(Recording& rec, uint32_t tid, uint64_t lock, uint8_t flags = 0, uint64_t caller = kCaller) {
  rec.event("_raw_spin_lock", tid, tid, {lock}, caller, flags);
}
void spin_unlock(Recording& rec, uint32_t tid, uint64_t lock, uint8_t flags = 0, uint64_t caller = kCaller) {
  rec.event("_raw_spin_unlock", tid, tid, {lock}, caller, flags);
}

// A kallsyms-format file with `text` in it, for the symbolizers the Namer is given.
std::string kallsyms_file(std::string_view text) {
  return write_temp_file(ByteVector(reinterpret_cast<const std::byte*>(text.data()),
                                    reinterpret_cast<const std::byte*>(text.data() + text.size())),
                         ".kallsyms");
}

}  // namespace

TEST_CASE("lockdep: a spinlock taken in hardirq and with irqs on in process context is irq-inconsistent") {
  Recording rec;
  rec.comm(10, 10, "insmod");
  rec.event("_raw_spin_lock", 0, 0, {kLockA}, kCaller, kHardirq | kIrqsOff, false);
  rec.event("_raw_spin_unlock", 0, 0, {kLockA}, kCaller, kHardirq | kIrqsOff, false);
  spin_lock(rec, 10, kLockA);
  spin_unlock(rec, 10, kLockA);
  auto result = replay(rec);
  REQUIRE(kinds(result->replay) == std::vector{FindingKind::irq_inconsistent});
  const auto& finding = result->replay.findings()[0];
  CHECK(finding.title == "inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage");
  CHECK(lock_addresses(finding) == std::vector{kLockA});
  CHECK(finding.locks[0].kind == "spinlock");
  REQUIRE(finding.evidence.size() == 2);
  CHECK(finding.evidence[0].usage == "IN-HARDIRQ-W");
  CHECK(finding.evidence[0].holder == "[hardirq] cpu 0 over swapper[0]");
  CHECK(finding.evidence[0].stack == std::vector<uint64_t>{0xffffffff81a00001, kCaller});
  CHECK(finding.evidence[1].usage == "HARDIRQ-ON-W");
  CHECK(finding.evidence[1].holder == "insmod[10]");
  CHECK(finding.holders == std::vector<std::string>{"[hardirq]", "insmod[10]"});
}

TEST_CASE("lockdep: the usage seen first is named first") {
  Recording rec;
  rec.comm(10, 10, "insmod");
  spin_lock(rec, 10, kLockA);
  rec.event("_raw_spin_lock", 10, 10, {kLockA}, kCaller, kHardirq | kIrqsOff);
  auto result = replay(rec);
  REQUIRE(result->replay.findings().size() == 1);
  CHECK(result->replay.findings()[0].title == "inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage");
}

TEST_CASE("lockdep: irqsave in process context is not HARDIRQ-ON, nor a plain lock with irqs already off") {
  Recording rec;
  rec.event("_raw_spin_lock", 0, 0, {kLockA}, kCaller, kHardirq | kIrqsOff);
  // The probe at the entry of _raw_spin_lock_irqsave sees irqs on; the lock is taken with them off.
  rec.event("_raw_spin_lock_irqsave", 10, 10, {kLockA});
  spin_lock(rec, 20, kLockA, kIrqsOff);
  auto result = replay(rec);
  CHECK(result->replay.findings().empty());

  rec.event("_raw_spin_lock", 30, 30, {kLockA});  // and now one with irqs on
  CHECK(kinds(replay(rec)->replay) == std::vector{FindingKind::irq_inconsistent});
}

TEST_CASE("lockdep: softirq inconsistency, and _bh or bottom halves off are not SOFTIRQ-ON") {
  Recording rec;
  rec.event("_raw_spin_lock", 0, 0, {kLockA}, kCaller, kSoftirq);
  rec.event("_raw_spin_lock_bh", 10, 10, {kLockA});
  spin_lock(rec, 20, kLockA, kBhOff);
  CHECK(replay(rec)->replay.findings().empty());

  spin_lock(rec, 30, kLockA);
  auto result = replay(rec);
  REQUIRE(kinds(result->replay) == std::vector{FindingKind::softirq_inconsistent});
  CHECK(result->replay.findings()[0].title == "inconsistent {IN-SOFTIRQ-W} -> {SOFTIRQ-ON-W} usage");
}

TEST_CASE("lockdep: a hardirq on top of softirq counts as hardirq, the innermost context") {
  Recording rec;
  rec.event("_raw_spin_lock", 0, 0, {kLockA}, kCaller, kHardirq | kSoftirq | kIrqsOff);
  spin_lock(rec, 10, kLockA, kBhOff);  // irqs on, bottom halves off: HARDIRQ-ON only
  auto result = replay(rec);
  REQUIRE(kinds(result->replay) == std::vector{FindingKind::irq_inconsistent});
  CHECK(result->replay.findings()[0].evidence[0].usage == "IN-HARDIRQ-W");
}

TEST_CASE("lockdep: rwlock readers in hardirq and with irqs on are consistent, a writer is not") {
  Recording rec;
  rec.event("_raw_read_lock", 0, 0, {kLockA}, kCaller, kHardirq | kIrqsOff);
  rec.event("_raw_read_lock", 10, 10, {kLockA});
  CHECK(replay(rec)->replay.findings().empty());

  rec.event("_raw_write_lock", 20, 20, {kLockA});
  auto result = replay(rec);
  REQUIRE(result->replay.findings().size() == 1);
  CHECK(result->replay.findings()[0].title == "inconsistent {IN-HARDIRQ-R} -> {HARDIRQ-ON-W} usage");
  CHECK(result->replay.findings()[0].locks[0].kind == "rwlock-read,rwlock-write");
}

TEST_CASE("lockdep: ABBA on two spinlocks by two threads one after the other is a cycle") {
  for (std::string group : {"probe", "lockrec"}) {  // plain perf probe recordings and lockrec's
    Recording rec(group);
    rec.comm(10, 10, "lockscope_ab");
    rec.comm(20, 20, "lockscope_ba");
    spin_lock(rec, 10, kLockA, 0, kCallerAB);
    spin_lock(rec, 10, kLockB, 0, kCallerAB + 8);
    spin_unlock(rec, 10, kLockB, 0, kCallerAB + 16);
    spin_unlock(rec, 10, kLockA, 0, kCallerAB + 24);
    spin_lock(rec, 20, kLockB, 0, kCallerBA);
    spin_lock(rec, 20, kLockA, 0, kCallerBA + 8);
    spin_unlock(rec, 20, kLockA, 0, kCallerBA + 16);
    spin_unlock(rec, 20, kLockB, 0, kCallerBA + 24);
    auto result = replay(rec);
    INFO(group);
    REQUIRE(kinds(result->replay) == std::vector{FindingKind::lock_order_cycle});
    const auto& finding = result->replay.findings()[0];
    CHECK(finding.title == "possible circular locking dependency detected");
    CHECK(finding.caveat.empty());  // two code paths: a real ABBA, though never at the same time
    CHECK(lock_addresses(finding) == std::vector{kLockA, kLockB});
    REQUIRE(finding.evidence.size() == 2);
    CHECK(finding.evidence[0].held_lock == kLockA);
    CHECK(finding.evidence[0].lock == kLockB);
    CHECK(finding.evidence[0].holder == "lockscope_ab[10]");
    CHECK(finding.evidence[1].held_lock == kLockB);
    CHECK(finding.evidence[1].holder == "lockscope_ba[20]");
    CHECK(result->replay.stats().unmatched_releases == 0);
  }
}

TEST_CASE("lockdep: the same order in two threads, or nesting after the release, is no cycle") {
  Recording rec;
  for (uint32_t tid : {10u, 20u}) {
    spin_lock(rec, tid, kLockA);
    spin_lock(rec, tid, kLockB);
    spin_unlock(rec, tid, kLockB);
    spin_unlock(rec, tid, kLockA);
  }
  spin_lock(rec, 30, kLockB);
  spin_unlock(rec, 30, kLockB);
  spin_lock(rec, 30, kLockA);  // B was released: no B -> A
  spin_unlock(rec, 30, kLockA);
  auto result = replay(rec);
  CHECK(result->replay.findings().empty());
  CHECK(result->replay.stats().edges == 1);
}

TEST_CASE("lockdep: ABBA on two mutexes, and a three-lock cycle") {
  Recording rec;
  auto nest = [&](uint32_t tid, uint64_t outer, uint64_t inner) {  // each thread its own function
    uint64_t caller = kCaller + uint64_t{tid} * 0x100;
    rec.event("mutex_lock", tid, tid, {outer}, caller);
    rec.event("mutex_lock", tid, tid, {inner}, caller + 8);
    rec.event("mutex_unlock", tid, tid, {inner}, caller + 16);
    rec.event("mutex_unlock", tid, tid, {outer}, caller + 24);
  };
  nest(10, kLockA, kLockB);
  nest(20, kLockB, kLockC);
  nest(30, kLockC, kLockA);
  auto result = replay(rec);
  REQUIRE(kinds(result->replay) == std::vector{FindingKind::lock_order_cycle});
  CHECK(lock_addresses(result->replay.findings()[0]) == std::vector{kLockA, kLockB, kLockC});
  CHECK(result->replay.findings()[0].locks[0].kind == "mutex");
  CHECK(result->replay.findings()[0].caveat.empty());
}

// d_walk() locks a dentry (this_parent), then a child with spin_lock_nested(). The /proc dentries
// of reaped tasks are freed and reallocated all the time, so a later walk can find the old child's
// address as a parent and the old parent's as its child: the guest recording showed such a cycle,
// both edges by one task with identical stacks.
TEST_CASE("lockdep: a cycle made at one pair of call sites, never at the same time, carries a caveat") {
  constexpr uint64_t kParentSite = 0xffffffff81300057, kChildSite = 0xffffffff813000ca;
  auto walk = [](Recording& rec, uint64_t parent, uint64_t child) {
    spin_lock(rec, 118, parent, 0, kParentSite);
    spin_lock(rec, 118, child, 0, kChildSite);
    spin_unlock(rec, 118, child, 0, kChildSite);
    spin_unlock(rec, 118, parent, 0, kParentSite);
  };
  Recording rec;
  rec.comm(118, 118, "sh");
  walk(rec, kLockA, kLockB);
  walk(rec, kLockA, kLockB);
  walk(rec, kLockB, kLockA);  // the addresses reused the other way round
  auto result = replay(rec);
  REQUIRE(kinds(result->replay) == std::vector{FindingKind::lock_order_cycle});
  const auto& finding = result->replay.findings()[0];
  CHECK(finding.caveat.find("the same two call sites") != std::string::npos);
  REQUIRE(finding.evidence.size() == 2);
  CHECK(finding.evidence[0].count == 2);
  CHECK(finding.evidence[0].last_time_ns > finding.evidence[0].time_ns);
  CHECK(finding.evidence[0].last_time_ns < finding.evidence[1].time_ns);

  SECTION("a real cycle is listed before it") {
    spin_lock(rec, 10, kLockC, 0, kCallerAB);
    spin_lock(rec, 10, kLockA + 0x40, 0, kCallerAB + 8);
    spin_unlock(rec, 10, kLockA + 0x40);
    spin_unlock(rec, 10, kLockC);
    spin_lock(rec, 20, kLockA + 0x40, 0, kCallerBA);
    spin_lock(rec, 20, kLockC, 0, kCallerBA + 8);
    spin_unlock(rec, 20, kLockC);
    spin_unlock(rec, 20, kLockA + 0x40);
    result = replay(rec);
    REQUIRE(result->replay.findings().size() == 2);
    CHECK(lock_addresses(result->replay.findings()[0]) == std::vector{kLockC, kLockA + 0x40});
    CHECK(result->replay.findings()[0].caveat.empty());
    CHECK(!result->replay.findings()[1].caveat.empty());
  }
  SECTION("both orders seen within one stretch of time is no reuse: no caveat") {
    walk(rec, kLockA, kLockB);
    result = replay(rec);
    REQUIRE(kinds(result->replay) == std::vector{FindingKind::lock_order_cycle});
    CHECK(result->replay.findings()[0].caveat.empty());
  }
  SECTION("the caveat is in the text report and the JSON") {
    report::Report report = rec.report(result->model);
    report.findings = result->replay.findings();
    std::ostringstream text;
    report::write_report(report, "text", {}, text);
    CHECK(text.str().find("    caveat: every edge was first made at the same two call sites") != std::string::npos);
    CHECK(text.str().find("seen 2 times, first by sh[118] at ") != std::string::npos);
    CHECK(text.str().find(", last at ") != std::string::npos);
    std::ostringstream json;
    report::write_report(report, "json", {}, json);
    auto parsed = nlohmann::json::parse(json.str());
    CHECK(parsed["findings"][0]["caveat"] == finding.caveat);
    CHECK(parsed["findings"][0]["evidence"][0]["last_time_ns"] == finding.evidence[0].last_time_ns);
  }
}

TEST_CASE("lockdep: a trylock adds no edge, but a lock taken by trylock is held") {
  Recording rec;
  spin_lock(rec, 10, kLockA);
  rec.event("_raw_spin_trylock", 10, 10, {kLockB});
  rec.event("_raw_spin_trylock__return", 10, 10, {1});
  spin_lock(rec, 10, kLockC);  // held B (by trylock) -> C, and through it A -> C
  spin_unlock(rec, 10, kLockC);
  spin_unlock(rec, 10, kLockB);
  spin_unlock(rec, 10, kLockA);
  spin_lock(rec, 20, kLockB);
  spin_lock(rec, 20, kLockA);  // B -> A: no cycle, since the trylock made no A -> B
  spin_unlock(rec, 20, kLockA);
  spin_unlock(rec, 20, kLockB);
  auto result = replay(rec);
  CHECK(result->replay.findings().empty());
  CHECK(result->replay.stats().edges == 3);  // B -> C, A -> C, B -> A

  spin_lock(rec, 30, kLockC);
  spin_lock(rec, 30, kLockA);  // C -> A closes A -> C -> A
  CHECK(kinds(replay(rec)->replay) == std::vector{FindingKind::lock_order_cycle});
}

TEST_CASE("lockdep: a hold whose release was missed makes no order edge") {
  // perf enables the probes one by one: at the start of a recording its own ioctls show
  // mutex_lock without mutex_unlock. A hold found stale later may have ended before what followed.
  Recording rec;
  spin_lock(rec, 10, kLockA);  // its release is missed
  spin_lock(rec, 10, kLockB);  // A -> B, from a hold not yet known to be stale
  spin_unlock(rec, 10, kLockB);
  spin_lock(rec, 10, kLockA);  // A again while "held": the first hold was stale
  spin_unlock(rec, 10, kLockA);
  spin_lock(rec, 20, kLockB);
  spin_lock(rec, 20, kLockA);  // B -> A, released properly
  spin_unlock(rec, 20, kLockA);
  spin_unlock(rec, 20, kLockB);
  auto result = replay(rec);
  CHECK(result->replay.findings().empty());
  CHECK(result->replay.stats().unconfirmed_edges == 1);

  spin_lock(rec, 30, kLockA);  // a properly released A -> B closes the cycle after all
  spin_lock(rec, 30, kLockB);
  spin_unlock(rec, 30, kLockB);
  spin_unlock(rec, 30, kLockA);
  CHECK(kinds(replay(rec)->replay) == std::vector{FindingKind::lock_order_cycle});
}

TEST_CASE("lockdep: the runqueue lock handed over a context switch leaves no stale hold") {
  // Task 10 takes the lock in __schedule() and is switched out; task 20, switched in, releases it.
  // Task 10 resumes elsewhere still "holding" it until someone takes it: then that hold is stale.
  Recording rec;
  spin_lock(rec, 10, kLockA);    // __schedule() in task 10
  spin_unlock(rec, 20, kLockA);  // finish_task_switch() in task 20 releases it
  spin_lock(rec, 30, kLockA);    // its own hold: a stale one of task 10's would be forgotten
  spin_unlock(rec, 30, kLockA);
  spin_lock(rec, 40, kLockA);  // __schedule() in task 40, switched out holding it
  spin_lock(rec, 50, kLockA);  // task 50 takes it: task 40's hold must have ended unseen
  spin_lock(rec, 40, kLockB);  // task 40 resumed: not under A
  spin_unlock(rec, 40, kLockB);
  spin_unlock(rec, 50, kLockA);
  spin_lock(rec, 60, kLockB);
  spin_lock(rec, 60, kLockA);  // B -> A, the only real order
  spin_unlock(rec, 60, kLockA);
  spin_unlock(rec, 60, kLockB);
  auto result = replay(rec);
  CHECK(result->replay.findings().empty());
  CHECK(result->replay.stats().released_by_other_context == 1);
  CHECK(result->replay.stats().held_elsewhere_when_taken == 1);
}

TEST_CASE("lockdep: a failed trylock holds nothing") {
  Recording rec;
  rec.event("_raw_spin_trylock", 10, 10, {kLockA});
  rec.event("_raw_spin_trylock__return", 10, 10, {0});
  spin_lock(rec, 10, kLockB);
  auto result = replay(rec);
  CHECK(result->replay.stats().edges == 0);
}

TEST_CASE("lockdep: read-read recursion follows lockdep's recursive-read rules") {
  // rwlock readers in interrupt context are recursive: taking the lock again is allowed, and a
  // cycle whose readers meet only recursive readers cannot deadlock.
  Recording rec;
  auto nested_reads = [&](uint32_t cpu, uint64_t outer, uint64_t inner, const std::string& inner_probe) {
    rec.on_cpu(cpu);
    std::string unlock = inner_probe == "_raw_read_lock" ? "_raw_read_unlock" : "_raw_write_unlock";
    rec.event("_raw_read_lock", 0, 0, {outer}, kCaller, kSoftirq);
    rec.event(inner_probe, 0, 0, {inner}, kCaller, kSoftirq);
    rec.event(unlock, 0, 0, {inner}, kCaller, kSoftirq);
    rec.event("_raw_read_unlock", 0, 0, {outer}, kCaller, kSoftirq);
  };
  nested_reads(0, kLockA, kLockA, "_raw_read_lock");  // recursive read of the same lock
  nested_reads(0, kLockA, kLockB, "_raw_read_lock");
  nested_reads(1, kLockB, kLockA, "_raw_read_lock");
  auto result = replay(rec);
  CHECK(result->replay.findings().empty());
  CHECK(result->replay.stats().recursive_reads == 1);
  CHECK(result->replay.stats().reacquired_while_held == 0);

  // A writer waiting for A while A's reader waits for the writer's B does deadlock.
  rec.on_cpu(1);
  rec.event("_raw_write_lock", 0, 0, {kLockB}, kCaller, kSoftirq);
  rec.event("_raw_write_lock", 0, 0, {kLockA}, kCaller, kSoftirq);
  CHECK(kinds(replay(rec)->replay) == std::vector{FindingKind::lock_order_cycle});
}

TEST_CASE("lockdep: process-context rwlock readers are not recursive (queued rwlocks)") {
  Recording rec;
  for (auto [tid, outer, inner] : {std::tuple{10u, kLockA, kLockB}, std::tuple{20u, kLockB, kLockA}}) {
    rec.event("_raw_read_lock", tid, tid, {outer});
    rec.event("_raw_read_lock", tid, tid, {inner});
    rec.event("_raw_read_unlock", tid, tid, {inner});
    rec.event("_raw_read_unlock", tid, tid, {outer});
  }
  CHECK(kinds(replay(rec)->replay) == std::vector{FindingKind::lock_order_cycle});
}

TEST_CASE("lockdep: a release by another thread ends the hold, one never taken is counted") {
  Recording rec;
  rec.event("mutex_lock", 10, 10, {kLockA});
  rec.event("mutex_unlock", 20, 20, {kLockA});  // handed off: released by another task
  rec.event("mutex_lock", 10, 10, {kLockB});    // A is no longer held: no A -> B
  rec.event("mutex_unlock", 10, 10, {kLockB});
  rec.event("mutex_lock", 20, 20, {kLockB});
  rec.event("mutex_lock", 20, 20, {kLockA});
  rec.event("mutex_unlock", 20, 20, {kLockC});  // taken before the recording began
  auto result = replay(rec);
  CHECK(result->replay.findings().empty());
  CHECK(result->replay.stats().released_by_other_context == 1);
  CHECK(result->replay.stats().unmatched_releases == 1);
  CHECK(result->replay.stats().edges == 1);  // B -> A only
}

TEST_CASE("lockdep: lost events make the replay forget what was held") {
  Recording rec;
  spin_lock(rec, 10, kLockA);
  rec.lost();
  spin_lock(rec, 10, kLockB);
  spin_unlock(rec, 10, kLockA);
  auto result = replay(rec);
  CHECK(result->replay.stats().replay_resets == 1);
  CHECK(result->replay.stats().edges == 0);
  CHECK(result->replay.stats().unmatched_releases == 1);
}

TEST_CASE("lockdep: a spinlock held over a second lost its release, a mutex may be held that long") {
  Recording rec;
  spin_lock(rec, 10, kLockA);
  rec.event("mutex_lock", 10, 10, {kLockC});
  rec.wait_ns(2'000'000'000);
  spin_lock(rec, 10, kLockB);  // C -> B; A's release was missed: no A -> B
  auto result = replay(rec);
  CHECK(result->replay.stats().stale_spin_holds == 1);
  CHECK(result->replay.stats().edges == 2);  // A -> C before the wait, C -> B after it
}

TEST_CASE("lockdep: an irq-safe lock held while an irq-unsafe lock is taken") {
  Recording rec;
  rec.comm(10, 10, "worker");
  rec.event("_raw_spin_lock", 0, 0, {kLockA}, kCaller, kHardirq | kIrqsOff);  // A is HARDIRQ-safe
  rec.event("_raw_spin_unlock", 0, 0, {kLockA}, kCaller, kHardirq | kIrqsOff);
  rec.event("_raw_spin_lock_irqsave", 10, 10, {kLockA});
  spin_lock(rec, 10, kLockB, kIrqsOff);  // A -> B, with irqs off: B itself is fine here
  spin_unlock(rec, 10, kLockB, kIrqsOff);
  rec.event("_raw_spin_unlock_irqrestore", 10, 10, {kLockA}, kCaller, kIrqsOff);
  CHECK(replay(rec)->replay.findings().empty());

  spin_lock(rec, 20, kLockB);  // B is HARDIRQ-unsafe
  spin_unlock(rec, 20, kLockB);
  auto result = replay(rec);
  REQUIRE(kinds(result->replay) == std::vector{FindingKind::irq_safe_to_unsafe});
  const auto& finding = result->replay.findings()[0];
  CHECK(finding.title == "HARDIRQ-safe -> HARDIRQ-unsafe lock order detected");
  CHECK(lock_addresses(finding) == std::vector{kLockA, kLockB});
  REQUIRE(finding.evidence.size() == 3);
  CHECK(finding.evidence[0].usage == "IN-HARDIRQ-W");
  CHECK(finding.evidence[1].usage == "HARDIRQ-ON-W");
  CHECK(finding.evidence[2].type == lockdep::Evidence::Type::edge);
  CHECK(finding.evidence[2].holder == "worker[10]");
}

TEST_CASE("lockdep: findings lead the text report and fill the JSON findings") {
  Recording rec;
  rec.comm(10, 10, "insmod");
  rec.event("_raw_spin_lock", 0, 0, {kLockA}, kCaller, kHardirq | kIrqsOff);
  spin_lock(rec, 10, kLockA);
  auto result = replay(rec);
  report::Report report = rec.report(result->model);
  report.findings = result->replay.findings();

  std::ostringstream text;
  report::write_report(report, "text", {}, text);
  auto findings_at = text.str().find("Lockdep findings");
  CHECK(findings_at != std::string::npos);
  CHECK(findings_at < text.str().find("Locks shared by the most holders"));
  CHECK(text.str().find("inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage") != std::string::npos);
  CHECK(text.str().find("<Interrupt>") != std::string::npos);

  std::ostringstream json;
  report::write_report(report, "json", {}, json);
  auto parsed = nlohmann::json::parse(json.str());
  REQUIRE(parsed["findings"].size() == 1);
  CHECK(parsed["findings"][0]["kind"] == "irq-inconsistent");
  CHECK(parsed["findings"][0]["locks"][0]["address"] == "0xffffffffc0a01078");
  CHECK(parsed["findings"][0]["evidence"][0]["usage"] == "IN-HARDIRQ-W");
  CHECK(parsed["findings"][0]["evidence"][0]["first_stack"].size() == 2);
  CHECK(parsed["findings"][0]["caveat"].is_null());
}

TEST_CASE("lockdep: module locks and code are named from the recording's kallsyms when the kernel's symbols cannot") {
  // The kernel image's own symbols (as a vmlinux gives them), and the kallsyms lockrec copied
  // with the module loaded.
  auto kernel = symbolizer::Symbolizer::from_kallsyms(
      kallsyms_file("ffffffff81000000 T _text\nffffffff81a00000 T _raw_spin_lock\n"
                    "ffffffff82000000 D jiffies_lock\nffffffff83000000 B _end\n"));
  auto modules = symbolizer::Symbolizer::from_kallsyms(
      kallsyms_file("ffffffff81000000 T _text\nffffffff81a00000 T _raw_spin_lock\n"
                    "ffffffffc0a01180 t lockscope_timer_fn\t[lockscope_lockdep]\n"
                    "ffffffffc0a03078 b lockscope_irq_lock\t[lockscope_lockdep]\n"));
  report::Namer namer(kernel.get(), modules.get());
  CHECK(namer.data(0xffffffffc0a03078).name == "lockscope_irq_lock");
  CHECK(namer.code(0xffffffffc0a01190, true).symbol == "lockscope_timer_fn+0x10");
  CHECK(namer.data(0xffffffff82000000).name == "jiffies_lock");
  CHECK(namer.code(0xffffffff81a00001, false).symbol == "_raw_spin_lock+0x1");

  report::Namer kernel_only(kernel.get());
  CHECK_FALSE(kernel_only.data(0xffffffffc0a03078).found);
}

TEST_CASE("where a lock lives comes from the kernel's layout, not from whether a symbol names it") {
  // A kallsyms without data symbols and without _end (CONFIG_KALLSYMS_ALL off), as this machine's.
  auto text_only = symbolizer::Symbolizer::from_kallsyms(
      kallsyms_file("ffffffff81000000 T _text\nffffffff81a00000 T _raw_spin_lock\nffffffff82314980 T _etext\n"));
  auto modules = symbolizer::Symbolizer::from_kallsyms(
      kallsyms_file("ffffffff81000000 T _text\nffffffffc0a01180 t lockscope_timer_fn\t[lockscope_lockdep]\n"
                    "ffffffffc0a03078 b lockscope_irq_lock\t[lockscope_lockdep]\n"));
  report::Namer x86(text_only.get(), modules.get(), "x86_64");
  // tasklist_lock's address on that machine: past _etext, inside the kernel image mapping.
  CHECK(x86.storage_of(0xffffffff82e08080) == report::Storage::static_image);
  CHECK(x86.in_kernel_image(0xffffffff82e08080));
  CHECK_FALSE(x86.data(0xffffffff82e08080).found);
  CHECK(x86.storage_of(0xffffffffc0a03078) == report::Storage::module);       // named by the module's kallsyms
  CHECK(x86.storage_of(0xffffffffc0b00000) == report::Storage::module);       // in the module mapping, unnamed
  CHECK(x86.storage_of(0xffff888012345678) == report::Storage::dynamic);      // direct map, 4-level paging
  CHECK(x86.storage_of(0xff11000012340000) == report::Storage::dynamic);      // direct map, 5-level paging
  CHECK(x86.storage_of(0xffffc90000123000) == report::Storage::dynamic);      // vmalloc
  CHECK(x86.storage_of(0xffffffff80000000 - 8) == report::Storage::unknown);  // in no region

  // Without the architecture's layout and without _end, an unnamed address is not placed at all.
  report::Namer no_layout(text_only.get(), nullptr, "");
  CHECK(no_layout.storage_of(0xffffffff82e08080) == report::Storage::unknown);
  CHECK(no_layout.storage_of(0xffff888012345678) == report::Storage::unknown);

  // With _end (a vmlinux, or kallsyms with data symbols) the image's bounds are the symbols' own.
  auto with_end = symbolizer::Symbolizer::from_kallsyms(
      kallsyms_file("ffffffff81000000 T _text\nffffffff82000000 D jiffies_lock\nffffffff83000000 B _end\n"));
  report::Namer bounded(with_end.get(), nullptr, "");
  CHECK(bounded.storage_of(0xffffffff82000000) == report::Storage::static_image);
  CHECK(bounded.storage_of(0xffffffff82e08080) == report::Storage::static_image);
  CHECK(bounded.storage_of(0xffffffff83000008) == report::Storage::unknown);
}

TEST_CASE("lockdep: dynamic locks of one class share their usage states when asked to") {
  constexpr uint64_t kHeapA = 0xff11000012340000, kHeapB = 0xff11000056780000;
  Recording rec;
  rec.comm(10, 10, "worker");
  rec.event("_raw_spin_lock", 0, 0, {kHeapA}, kCaller, kHardirq | kIrqsOff);  // one object's lock in hardirq
  spin_lock(rec, 10, kHeapB);  // another object's lock of the same class, irqs on
  auto result = replay(rec);
  CHECK(result->replay.findings().empty());  // by address, each lock is consistent

  result->replay.add_class_findings([](uint64_t, std::span<const uint64_t>) { return std::string(); });
  CHECK(result->replay.findings().empty());  // no class: nothing joined

  result->replay.add_class_findings([](uint64_t address, std::span<const uint64_t> stack) {
    CHECK(stack.size() == 2);
    return address == kHeapA || address == kHeapB ? std::string("obj_irq_work") : std::string();
  });
  REQUIRE(kinds(result->replay) == std::vector{FindingKind::irq_inconsistent});
  const auto& finding = result->replay.findings()[0];
  CHECK(finding.title == "inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage");
  CHECK(lock_addresses(finding) == std::vector{kHeapA, kHeapB});
  CHECK(finding.locks[0].lock_class == "obj_irq_work");
  CHECK(finding.evidence[1].holder == "worker[10]");
}
