// Which symbols name a recording's kernel addresses, chosen the same way by every command:
// --vmlinux (relocated by the recording's kernel map, or --kaslr-offset), --kallsyms, lockrec's
// FILE.kallsyms side file, or this machine's /proc/kallsyms when the recording is of the running
// kernel. Never a guess: without any of them there are no symbols, and a note says so.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lockscope/perf_data.hpp"
#include "lockscope/symbolizer.hpp"

namespace lockscope::cli {

struct SymbolSourceOptions {
  std::string recording;  // the perf.data path ("-" for a pipe: no side file)
  std::string vmlinux;
  std::string kallsyms;
  std::string kaslr_offset;              // runtime _text minus the vmlinux's _text, hex
  bool force_vmlinux = false;            // use a vmlinux whose build-id is not the recording's kernel's
  std::vector<uint64_t> percpu_offsets;  // __per_cpu_offset[] of the recorded boot, when known
};

// What the recording says about its kernel.
struct KernelFacts {
  bool from_recording = false;  // false: addresses are named without a recording (symbolize)
  std::optional<uint64_t> runtime_text;
  std::string os_release;
  std::string build_id_hex;
  static KernelFacts from(const perf::KernelImageInfo& info);
};

struct KernelSymbols {
  std::unique_ptr<symbolizer::Symbolizer> symbols;  // null when nothing can name addresses
  // With --vmlinux: the recording's kallsyms (--kallsyms or lockrec's FILE.kallsyms), for what
  // the vmlinux cannot name: modules loaded at run time, whose symbols only kallsyms lists.
  std::unique_ptr<symbolizer::Symbolizer> modules;
  std::string source;              // "vmlinux PATH", "kallsyms PATH", "none"
  std::vector<std::string> notes;  // warnings, one line each
  // The note (also in `notes`) saying --force-vmlinux took another build's vmlinux, if it did.
  std::optional<size_t> forced_vmlinux_note;
};

KernelSymbols open_kernel_symbols(const SymbolSourceOptions& options, const KernelFacts& kernel);

std::string running_kernel_release();

}  // namespace lockscope::cli
