#include "hex_number.hpp"
#include "kernel_symbols.hpp"

#include <cstdio>
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

}  // namespace

KernelFacts KernelFacts::from(const perf::KernelImageInfo& info) {
  KernelFacts facts;
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
      out.symbols->set_relocation(parse_offset(options.kaslr_offset));
    } else if (kernel.runtime_text && out.symbols->text_address() != 0) {
      out.symbols->set_relocation(static_cast<int64_t>(*kernel.runtime_text - out.symbols->text_address()));
    } else {
      out.notes.push_back("the recording has no kernel map with _text: assuming no KASLR "
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
      out.notes.push_back("--force-vmlinux: " + options.vmlinux +
                          " is not the recorded kernel's (build-id differs); names may be wrong");
      std::fprintf(stderr, "lockanalyze: warning: %s\n", out.notes.back().c_str());
    }
    std::string kallsyms = recording_kallsyms(options);
    if (!kallsyms.empty()) {
      out.modules = symbolizer::Symbolizer::from_kallsyms(kallsyms);
      out.source += ", modules from kallsyms " + kallsyms;
    }
  } else {
    std::string kallsyms = recording_kallsyms(options);
    if (kallsyms.empty() && !kernel.os_release.empty() &&
        kernel.os_release == running_kernel_release() && readable("/proc/kallsyms")) {
      kallsyms = "/proc/kallsyms";
    }
    if (kallsyms.empty()) {
      out.source = "none";
      out.notes.push_back("no vmlinux or kallsyms for kernel " +
                          (kernel.os_release.empty() ? std::string("(unknown)") : kernel.os_release) +
                          ": addresses are not named (pass --vmlinux or --kallsyms)");
      return out;
    }
    out.symbols = symbolizer::Symbolizer::from_kallsyms(kallsyms);
    out.source = "kallsyms " + kallsyms;
  }
  for (const auto& warning : out.symbols->warnings()) out.notes.push_back(warning);
  return out;
}

}  // namespace lockscope::cli
