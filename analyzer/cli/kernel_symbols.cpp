#include "kernel_symbols.hpp"
#include "hex_number.hpp"

#include <sys/utsname.h>
#include <unistd.h>

#include "lockscope/error.hpp"

namespace lockscope::cli {
namespace {

bool readable(const std::string& path) { return access(path.c_str(), R_OK) == 0; }

int64_t parse_offset(const std::string& text) {
  if (auto offset = parse_signed_hex(text)) return *offset;
  throw Error("--kaslr-offset '" + text + "' is not a hex number")
      .hint("give runtime _text minus the vmlinux's _text, e.g. 0x2d200000");
}

// The kallsyms given for the recording, or lockrec's side file next to it.
std::string recording_kallsyms(const SymbolSourceOptions& options) {
  if (!options.kallsyms.empty()) return options.kallsyms;
  if (options.recording != "-" && readable(options.recording + ".kallsyms")) {
    return options.recording + ".kallsyms";  // lockrec's side file
  }
  return "";
}

// Why a kallsyms does not fit the recording, or "" when it fits or cannot be told. perf's kernel
// map holds the _text of the boot that was recorded; a kallsyms of another boot (KASLR placed the
// kernel elsewhere) names every address wrongly and plausibly.
std::string kallsyms_mismatch(const symbolizer::Symbolizer& kallsyms, const KernelFacts& kernel) {
  if (!kernel.runtime_text || kallsyms.text_address() == 0) return "";
  if (kallsyms.text_address() == *kernel.runtime_text) return "";
  return "its _text is " + hex(kallsyms.text_address()) + " but the recording's kernel map puts _text at " +
         hex(*kernel.runtime_text) + ": it is of another boot (KASLR placed the kernel elsewhere)";
}

// A kallsyms the user gave, or lockrec's side file: one that does not fit is refused.
std::unique_ptr<symbolizer::Symbolizer> open_recording_kallsyms(const std::string& path, const KernelFacts& kernel) {
  auto kallsyms = symbolizer::Symbolizer::from_kallsyms(path);
  std::string mismatch = kallsyms_mismatch(*kallsyms, kernel);
  if (!mismatch.empty()) {
    throw Error("is not the recorded kernel's kallsyms: " + mismatch)
        .file(path)
        .hint("give the kallsyms saved with the recording (lockrec writes FILE.kallsyms), or --vmlinux");
  }
  return kallsyms;
}

}  // namespace

KernelFacts KernelFacts::from(const perf::KernelImageInfo& info) {
  KernelFacts facts;
  facts.from_recording = true;
  if (info.has_text_address) facts.runtime_text = info.text_address;
  facts.os_release = info.os_release;
  facts.build_id_hex = info.build_id_hex;
  return facts;
}

std::string running_kernel_release() {
  utsname names{};
  return uname(&names) == 0 ? names.release : "";
}

KernelSymbols open_kernel_symbols(const SymbolSourceOptions& options, const KernelFacts& kernel) {
  KernelSymbols out;
  if (!options.vmlinux.empty()) {
    out.symbols = symbolizer::Symbolizer::open(options.vmlinux);
    out.source = "vmlinux " + options.vmlinux;
    if (!options.kaslr_offset.empty()) {
      int64_t offset = parse_offset(options.kaslr_offset);
      uint64_t relocated_text = out.symbols->text_address() + static_cast<uint64_t>(offset);
      if (kernel.runtime_text && out.symbols->text_address() != 0 && relocated_text != *kernel.runtime_text) {
        throw Error("--kaslr-offset " + options.kaslr_offset + " puts _text at " + hex(relocated_text) +
                    ", but the recording's kernel map says " + hex(*kernel.runtime_text))
            .hint("leave --kaslr-offset out: the recording's own map relocates the vmlinux (offset " +
                  hex(*kernel.runtime_text - out.symbols->text_address()) + ")");
      }
      out.symbols->set_relocation(offset);
    } else if (kernel.runtime_text && out.symbols->text_address() != 0) {
      out.symbols->set_relocation(static_cast<int64_t>(*kernel.runtime_text - out.symbols->text_address()));
    } else if (kernel.from_recording) {
      out.notes.push_back(
          "the recording has no kernel map with _text: assuming no KASLR "
          "(pass --kaslr-offset if the kernel was relocated)");
    }
    if (!out.symbols->check_build_id(kernel.build_id_hex)) {
      // Another kernel's vmlinux names every address wrongly and plausibly: refuse it.
      if (!options.force_vmlinux)
        throw Error("is not the recorded kernel's vmlinux: its build-id differs from the recording's " +
                    kernel.build_id_hex)
            .file(options.vmlinux)
            .hint("give the vmlinux of kernel " + kernel.os_release + " (Debian: linux-image-" + kernel.os_release +
                  "-dbg), or --force-vmlinux to use this one anyway");
      out.forced_vmlinux_note = out.notes.size();
      out.notes.push_back("--force-vmlinux: " + options.vmlinux +
                          " is not the recorded kernel's (build-id differs); names may be wrong");
    }
    std::string kallsyms = recording_kallsyms(options);
    if (!kallsyms.empty()) {
      out.modules = open_recording_kallsyms(kallsyms, kernel);
      out.source += ", modules from kallsyms " + kallsyms;
    }
  } else {
    std::string kallsyms = recording_kallsyms(options);
    if (!kallsyms.empty()) {
      out.symbols = open_recording_kallsyms(kallsyms, kernel);
    } else if (!kernel.os_release.empty() && kernel.os_release == running_kernel_release() &&
               readable("/proc/kallsyms")) {
      // The running kernel's, chosen because the release matches: since a reboot it may not be
      // the recorded boot's. Then it is not used, and the note says why.
      auto running = symbolizer::Symbolizer::from_kallsyms("/proc/kallsyms");
      std::string mismatch = kallsyms_mismatch(*running, kernel);
      if (mismatch.empty()) {
        kallsyms = "/proc/kallsyms";
        out.symbols = std::move(running);
      } else {
        out.notes.push_back("/proc/kallsyms is not used: " + mismatch +
                            "; pass the recorded boot's --kallsyms or --vmlinux");
      }
    }
    if (!out.symbols) {
      out.source = "none";
      if (out.notes.empty()) {
        out.notes.push_back("no vmlinux or kallsyms for kernel " +
                            (kernel.os_release.empty() ? std::string("(unknown)") : kernel.os_release) +
                            ": addresses are not named (pass --vmlinux or --kallsyms)");
      }
      return out;
    }
    out.source = "kallsyms " + kallsyms;
  }
  out.symbols->set_percpu_offsets(options.percpu_offsets);
  for (const auto& warning : out.symbols->warnings()) out.notes.push_back(warning);
  return out;
}

}  // namespace lockscope::cli
