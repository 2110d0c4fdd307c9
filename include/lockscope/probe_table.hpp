// The one thing the recorder and the analyzer share: which kernel functions lockscope probes, and
// what each of them means. lockrec reads it to decide what to probe; the analyzer reads it to turn an
// event name back into "which lock kind, which flavour, acquire or release".
//
// lockrec names every kprobe event after the function it probes (lockrec:_raw_spin_lock, and
// lockrec:_raw_spin_trylock__return for a return probe, the name perf probe gives by default), so
// an event maps back to a row by its function whatever the group: probe:_raw_spin_lock from a
// hand-made `perf probe -a` recording maps to the same row as lockrec:_raw_spin_lock.
#pragma once

#include <algorithm>
#include <array>
#include <optional>
#include <string_view>

namespace lockscope::probes {

enum class LockKind { spinlock, rwlock_read, rwlock_write, mutex, rwsem_read, rwsem_write };

// How the entry point takes or drops the lock, as its name says. Release flavours follow the
// acquire they undo: _raw_spin_unlock_irqrestore undoes _raw_spin_lock_irqsave, so it is irqsave.
enum class Flavour {
  plain,
  irq,
  irqsave,
  bh,
  nested,  // lockdep subclass variants, only on CONFIG_DEBUG_LOCK_ALLOC kernels
  irqsave_nested,
  nest_lock,
  interruptible,
  interruptible_nested,
  killable,
  killable_nested,
  io,
  io_nested,
  trylock,
  trylock_bh,
};

enum class Role {
  acquire,         // entry of a function that returns holding the lock
  release,         // entry of the matching unlock; probed only with --release
  trylock_entry,   // entry of a trylock: which lock was tried
  trylock_return,  // return of a trylock: whether it was taken; probed only with --trylock-result
};

// What the probe fetches. lock_pointer is the function's first argument (its DWARF name is in
// ProbeRow::parameter); return_value is the function's result ($retval).
enum class Fetch { lock_pointer, return_value };

struct ProbeRow {
  std::string_view function;
  LockKind kind;
  Flavour flavour;
  Role role;
  Fetch fetch;
  std::string_view parameter;  // the C name of the lock parameter, for DWARF (--vmlinux) probes
};

namespace detail {
using enum LockKind;
using enum Flavour;
using enum Role;
using enum Fetch;

// Every row of one lock function: acquire-style rows fetch the lock pointer.
constexpr ProbeRow lock(std::string_view function, LockKind kind, Flavour flavour, Role role,
                        std::string_view parameter = "lock") {
  return {function, kind, flavour, role, lock_pointer, parameter};
}
constexpr ProbeRow trylock_result(std::string_view function, LockKind kind, Flavour flavour) {
  return {function, kind, flavour, trylock_return, return_value, ""};
}
}  // namespace detail

// Rows are kernel/locking/spinlock.c, mutex.c and rwsem.c entry points. Which of them exist depends
// on the kernel's configuration (the _nested ones only with lockdep; with lockdep mutex_lock itself
// is a macro for mutex_lock_nested), so lockrec probes only those the running kernel has.
// No row is a return probe on a function that spins: a kretprobe on _raw_spin_lock has hung
// machines (bcc issue 2300) and bpftrace refuses it; only trylocks get (opt-in) return probes.
inline constexpr auto probe_table = [] {
  using namespace detail;
  return std::to_array<ProbeRow>({
      // spinlock
      lock("_raw_spin_lock", spinlock, plain, acquire),
      lock("_raw_spin_lock_irq", spinlock, irq, acquire),
      lock("_raw_spin_lock_irqsave", spinlock, irqsave, acquire),
      lock("_raw_spin_lock_bh", spinlock, bh, acquire),
      lock("_raw_spin_lock_nested", spinlock, nested, acquire),
      lock("_raw_spin_lock_irqsave_nested", spinlock, irqsave_nested, acquire),
      lock("_raw_spin_lock_nest_lock", spinlock, nest_lock, acquire),
      lock("_raw_spin_trylock", spinlock, trylock, trylock_entry),
      trylock_result("_raw_spin_trylock", spinlock, trylock),
      lock("_raw_spin_trylock_bh", spinlock, trylock_bh, trylock_entry),
      trylock_result("_raw_spin_trylock_bh", spinlock, trylock_bh),
      lock("_raw_spin_unlock", spinlock, plain, release),
      lock("_raw_spin_unlock_irq", spinlock, irq, release),
      lock("_raw_spin_unlock_irqrestore", spinlock, irqsave, release),
      lock("_raw_spin_unlock_bh", spinlock, bh, release),
      // rwlock, read side
      lock("_raw_read_lock", rwlock_read, plain, acquire),
      lock("_raw_read_lock_irq", rwlock_read, irq, acquire),
      lock("_raw_read_lock_irqsave", rwlock_read, irqsave, acquire),
      lock("_raw_read_lock_bh", rwlock_read, bh, acquire),
      lock("_raw_read_trylock", rwlock_read, trylock, trylock_entry),
      trylock_result("_raw_read_trylock", rwlock_read, trylock),
      lock("_raw_read_unlock", rwlock_read, plain, release),
      lock("_raw_read_unlock_irq", rwlock_read, irq, release),
      lock("_raw_read_unlock_irqrestore", rwlock_read, irqsave, release),
      lock("_raw_read_unlock_bh", rwlock_read, bh, release),
      // rwlock, write side
      lock("_raw_write_lock", rwlock_write, plain, acquire),
      lock("_raw_write_lock_irq", rwlock_write, irq, acquire),
      lock("_raw_write_lock_irqsave", rwlock_write, irqsave, acquire),
      lock("_raw_write_lock_bh", rwlock_write, bh, acquire),
      lock("_raw_write_lock_nested", rwlock_write, nested, acquire),
      lock("_raw_write_trylock", rwlock_write, trylock, trylock_entry),
      trylock_result("_raw_write_trylock", rwlock_write, trylock),
      lock("_raw_write_unlock", rwlock_write, plain, release),
      lock("_raw_write_unlock_irq", rwlock_write, irq, release),
      lock("_raw_write_unlock_irqrestore", rwlock_write, irqsave, release),
      lock("_raw_write_unlock_bh", rwlock_write, bh, release),
      // mutex
      lock("mutex_lock", mutex, plain, acquire),
      lock("mutex_lock_interruptible", mutex, interruptible, acquire),
      lock("mutex_lock_killable", mutex, killable, acquire),
      lock("mutex_lock_io", mutex, io, acquire),
      lock("mutex_lock_nested", mutex, nested, acquire),
      lock("mutex_lock_interruptible_nested", mutex, interruptible_nested, acquire),
      lock("mutex_lock_killable_nested", mutex, killable_nested, acquire),
      lock("mutex_lock_io_nested", mutex, io_nested, acquire),
      lock("_mutex_lock_nest_lock", mutex, nest_lock, acquire),
      lock("mutex_trylock", mutex, trylock, trylock_entry),
      trylock_result("mutex_trylock", mutex, trylock),
      lock("mutex_unlock", mutex, plain, release),
      // rwsem, read side (the kernel calls the parameter sem)
      lock("down_read", rwsem_read, plain, acquire, "sem"),
      lock("down_read_interruptible", rwsem_read, interruptible, acquire, "sem"),
      lock("down_read_killable", rwsem_read, killable, acquire, "sem"),
      lock("down_read_nested", rwsem_read, nested, acquire, "sem"),
      lock("down_read_killable_nested", rwsem_read, killable_nested, acquire, "sem"),
      lock("down_read_trylock", rwsem_read, trylock, trylock_entry, "sem"),
      trylock_result("down_read_trylock", rwsem_read, trylock),
      lock("up_read", rwsem_read, plain, release, "sem"),
      // rwsem, write side
      lock("down_write", rwsem_write, plain, acquire, "sem"),
      lock("down_write_killable", rwsem_write, killable, acquire, "sem"),
      lock("down_write_nested", rwsem_write, nested, acquire, "sem"),
      lock("down_write_killable_nested", rwsem_write, killable_nested, acquire, "sem"),
      lock("_down_write_nest_lock", rwsem_write, nest_lock, acquire, "sem"),
      lock("down_write_trylock", rwsem_write, trylock, trylock_entry, "sem"),
      trylock_result("down_write_trylock", rwsem_write, trylock),
      lock("up_write", rwsem_write, plain, release, "sem"),
  });
}();

// The suffix perf probe gives a return probe's event: _raw_spin_trylock%return becomes
// _raw_spin_trylock__return.
inline constexpr std::string_view return_event_suffix = "__return";

// A perf event name taken apart (see parse_event_name).
struct EventName {
  std::string_view name;
  bool is_return;
};

// Splits "group:event" (or a bare "event") into the event's name without the return suffix (for
// lockrec's probes the function) and whether it is a return probe.
constexpr EventName parse_event_name(std::string_view event) {
  if (auto colon = event.find(':'); colon != std::string_view::npos) event.remove_prefix(colon + 1);
  bool is_return = event.ends_with(return_event_suffix);
  if (is_return) event.remove_suffix(return_event_suffix.size());
  return {event, is_return};
}

// The prefix of the spinlock and rwlock entry points that hand-named probes often drop
// (`perf probe -a 'spin_lock=_raw_spin_lock ...'`).
inline constexpr std::string_view raw_lock_prefix = "_raw_";

// The row a perf event name stands for, whatever its group: probe:_raw_spin_lock,
// lockrec:_raw_spin_lock, _raw_spin_lock and lockrec:spin_lock all give the _raw_spin_lock acquire
// row; probe:_raw_spin_trylock__return gives the _raw_spin_trylock trylock_return row. As a
// position in probe_table, probe_table.size() when none.
constexpr size_t find_probe_index_by_event(std::string_view event) {
  // Plain variables, not a structured binding: clang 14 (the fuzz build) cannot capture those.
  const EventName parsed = parse_event_name(event);
  const std::string_view name = parsed.name;
  const bool is_return = parsed.is_return;
  auto names_function = [name](std::string_view function) {
    return function == name ||
           (function.starts_with(raw_lock_prefix) && function.substr(raw_lock_prefix.size()) == name);
  };
  auto match = std::find_if(probe_table.begin(), probe_table.end(), [&](const ProbeRow& row) {
    return names_function(row.function) && (row.role == Role::trylock_return) == is_return;
  });
  return static_cast<size_t>(match - probe_table.begin());
}

// The same row as a pointer, nullptr when none.
constexpr const ProbeRow* find_probe_by_event(std::string_view event) {
  const size_t index = find_probe_index_by_event(event);
  return index == probe_table.size() ? nullptr : &probe_table[index];
}

// The tracepoints of contention mode (kernels without kprobes, or --mode contention): they fire only
// when an acquisition has to wait, for every lock kind, with the lock address as `lock_addr`.
inline constexpr std::array<std::string_view, 2> contention_tracepoints = {"lock:contention_begin",
                                                                           "lock:contention_end"};

// Names for output (JSON, tables, CSV): the enum spelled as in the code.
constexpr std::string_view name_of(LockKind kind) {
  constexpr std::array names = {"spinlock", "rwlock-read", "rwlock-write", "mutex", "rwsem-read", "rwsem-write"};
  return names[static_cast<size_t>(kind)];
}
constexpr std::string_view name_of(Flavour flavour) {
  constexpr std::array names = {"plain",
                                "irq",
                                "irqsave",
                                "bh",
                                "nested",
                                "irqsave_nested",
                                "nest_lock",
                                "interruptible",
                                "interruptible_nested",
                                "killable",
                                "killable_nested",
                                "io",
                                "io_nested",
                                "trylock",
                                "trylock_bh"};
  return names[static_cast<size_t>(flavour)];
}
constexpr std::string_view name_of(Role role) {
  constexpr std::array names = {"acquire", "release", "trylock-entry", "trylock-return"};
  return names[static_cast<size_t>(role)];
}

// The table's promises, checked by the compiler.
namespace detail {
constexpr bool every_trylock_result_has_its_entry() {
  return std::all_of(probe_table.begin(), probe_table.end(), [](const ProbeRow& row) {
    if (row.role != Role::trylock_return) return true;
    return std::any_of(probe_table.begin(), probe_table.end(), [&](const ProbeRow& other) {
      return other.function == row.function && other.role == Role::trylock_entry;
    });
  });
}
// By index, not by pointer: under UBSan g++ keeps null-pointer checks (-fno-delete-null-pointer-
// checks), and a comparison of a table row's address with nullptr is then no constant expression.
constexpr bool every_event_name_maps_back_to_its_row() {
  for (size_t i = 0; i < probe_table.size(); ++i) {
    const size_t found = find_probe_index_by_event(probe_table[i].function);
    if (found == probe_table.size()) return false;
    if (probe_table[i].role != Role::trylock_return && found != i) return false;
  }
  return true;
}
}  // namespace detail
static_assert(detail::every_trylock_result_has_its_entry());
static_assert(detail::every_event_name_maps_back_to_its_row());
static_assert(name_of(Flavour::trylock_bh) == "trylock_bh", "name table out of step with Flavour");
static_assert(name_of(LockKind::rwsem_write) == "rwsem-write", "name table out of step with LockKind");

}  // namespace lockscope::probes
