// `lockanalyze symbolize`: names kernel addresses (locks and code) from a vmlinux or a kallsyms file,
// relocated by --kaslr-offset or by the `_text` the recording saw.
#include <sys/utsname.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.hpp"
#include "hex_number.hpp"
#include "kernel_symbols.hpp"
#include "lockscope/error.hpp"
#include "lockscope/perf_data.hpp"
#include "lockscope/symbolizer.hpp"

namespace lockscope::cli {

namespace {

using symbolizer::CodeLocation;
using symbolizer::DataName;
using symbolizer::Symbolizer;

struct SymbolizeOptions {
  std::string vmlinux;
  std::string kallsyms;
  std::string perf_data;
  std::string kaslr_offset;
  std::string format = "text";
  std::string percpu_offsets;  // comma-separated hex
  bool force_vmlinux = false;
  std::vector<std::string> addresses;
};

uint64_t parse_address(const std::string& text) {
  if (auto address = parse_hex(text)) return *address;
  throw Error("bad address \"" + text + "\"").hint("give addresses in hex, like 0xffffffff83f84768");
}

std::vector<uint64_t> parse_percpu_offsets(const std::string& text) {
  std::vector<uint64_t> offsets;
  for (size_t start = 0; start < text.size();) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    offsets.push_back(parse_address(text.substr(start, comma - start)));
    start = comma + 1;
  }
  return offsets;
}

// The same choice of symbols as the report's (kernel_symbols.hpp), with or without a recording.
KernelSymbols open_sources(const SymbolizeOptions& options) {
  KernelFacts kernel;
  if (!options.perf_data.empty()) kernel = KernelFacts::from(perf::read_kernel_image_info(options.perf_data));
  SymbolSourceOptions sources{options.perf_data.empty() ? "-" : options.perf_data,
                              options.vmlinux,
                              options.kallsyms,
                              options.kaslr_offset,
                              options.force_vmlinux,
                              parse_percpu_offsets(options.percpu_offsets)};
  KernelSymbols symbols = open_kernel_symbols(sources, kernel);
  if (!symbols.symbols) {
    throw Error("nothing to name addresses with")
        .in("symbolize")
        .hint(kernel.from_recording ? "the recording's kernel (" + kernel.os_release +
                                          ") is not the running one; pass --vmlinux or --kallsyms"
                                    : "pass --vmlinux (from linux-image-*-dbg) or --kallsyms");
  }
  return symbols;
}

nlohmann::json describe_json(uint64_t address, Symbolizer& primary, Symbolizer* fallback) {
  nlohmann::json out;
  out["address"] = hex(address);
  Symbolizer* source = &primary;
  bool code = primary.is_code(address);
  if (!code && fallback != nullptr && !primary.name_data(address).found && fallback->is_code(address)) {
    source = fallback;
    code = true;
  }
  if (code) {
    CodeLocation where = source->name_code(address);
    if (!where.found && fallback != nullptr && source != fallback) where = fallback->name_code(address);
    out["kind"] = "code";
    out["found"] = where.found;
    out["name"] = where.found ? where.name() : "";
    out["symbol"] = where.function;
    out["offset"] = where.offset;
    out["section"] = where.section;
    out["percpu"] = false;
    out["function"] = where.function;
    nlohmann::json inlines = nlohmann::json::array();
    for (const auto& frame : where.inlines)
      inlines.push_back({{"function", frame.function}, {"file", frame.file}, {"line", frame.line}});
    out["inlines"] = inlines;
    out["file"] = where.file;
    out["line"] = where.line;
    if (!where.found) out["why"] = where.why_unnamed;
    return out;
  }
  DataName what = primary.name_data(address);
  if (!what.found && fallback != nullptr) {
    DataName other = fallback->name_data(address);
    if (other.found) what = other;
  }
  out["kind"] = "data";
  out["found"] = what.found;
  out["name"] = what.name;
  out["symbol"] = what.symbol;
  out["offset"] = what.offset;
  out["section"] = what.section;
  out["percpu"] = what.percpu;
  out["type"] = what.type;
  out["is_lock"] = what.is_lock;
  if (what.cpu >= 0) out["cpu"] = what.cpu;
  if (!what.found) out["why"] = what.why_unnamed;
  return out;
}

std::string describe_text(const nlohmann::json& j) {
  std::string line = j["address"].get<std::string>() + " ";
  if (!j["found"].get<bool>()) return line + "?? (" + j["why"].get<std::string>() + ")";
  line += j["name"].get<std::string>();
  if (j["kind"] == "code") {
    if (j["line"].get<int>() > 0)
      line += " " + j["file"].get<std::string>() + ":" + std::to_string(j["line"].get<int>());
    for (const auto& frame : j["inlines"]) {
      line += " [inlined " + frame["function"].get<std::string>();
      if (frame["line"].get<int>() > 0)
        line += " " + frame["file"].get<std::string>() + ":" + std::to_string(frame["line"].get<int>());
      line += "]";
    }
    return line;
  }
  if (!j["type"].get<std::string>().empty()) line += " (" + j["type"].get<std::string>() + ")";
  line += " = " + j["symbol"].get<std::string>() + "+" + std::to_string(j["offset"].get<uint64_t>());
  if (!j["section"].get<std::string>().empty()) line += " in " + j["section"].get<std::string>();
  if (j["percpu"].get<bool>()) line += " per-cpu";
  if (j.contains("cpu")) line += " (cpu " + std::to_string(j["cpu"].get<int>()) + ")";
  return line;
}

void run_symbolize(const SymbolizeOptions& options) {
  if (options.format != "text" && options.format != "jsonl")
    throw Error("unknown --format \"" + options.format + "\"").hint("use text or jsonl");
  KernelSymbols sources = open_sources(options);
  for (const std::string& note : sources.notes) std::cerr << "warning: " << note << "\n";

  auto emit = [&](const std::string& token) {
    const nlohmann::json j = describe_json(parse_address(token), *sources.symbols, sources.modules.get());
    std::cout << (options.format == "jsonl" ? j.dump() : describe_text(j)) << "\n";
  };
  if (!options.addresses.empty()) {
    for (const std::string& token : options.addresses) emit(token);
  } else {
    std::string token;
    while (std::cin >> token) emit(token);
  }
  std::cout.flush();
  // A full disk or a closed pipe must not pass for names written (issue 20: this exited 0).
  if (!std::cout)
    throw Error(std::string("cannot write the names to standard output: ") + std::strerror(errno))
        .hint("is the disk full, or the reader gone?");
}

}  // namespace

void add_symbolize_command(CLI::App& app) {
  auto options = std::make_shared<SymbolizeOptions>();
  CLI::App* cmd = app.add_subcommand("symbolize",
                                     "Name kernel addresses: locks as gdb-evaluable member paths, "
                                     "code as function+offset with inlines and source lines");
  cmd->add_option("--vmlinux", options->vmlinux, "vmlinux with DWARF (linux-image-*-dbg) of the recorded kernel");
  auto* offset = cmd->add_option("--kaslr-offset", options->kaslr_offset,
                                 "KASLR offset (runtime _text minus the vmlinux's _text), hex");
  auto* perf_data =
      cmd->add_option("--perf-data", options->perf_data, "take the relocation and build-id from this recording");
  offset->excludes(perf_data);
  cmd->add_option("--kallsyms", options->kallsyms, "a copy of /proc/kallsyms (alone, or for what the vmlinux lacks)");
  cmd->add_flag("--force-vmlinux", options->force_vmlinux,
                "use a vmlinux whose build-id differs from the recording's kernel (names may be wrong)");
  cmd->add_option("--percpu-offsets", options->percpu_offsets,
                  "__per_cpu_offset[] of the recorded boot, hex, comma-separated (gdb on /proc/kcore: "
                  "p/x __per_cpu_offset); names CPUs' copies of per-cpu variables");
  cmd->add_option("--format", options->format, "text or jsonl")->check(CLI::IsMember({"text", "jsonl"}));
  cmd->add_option("addresses", options->addresses, "addresses in hex; read from stdin when none are given");
  cmd->callback([options] { run_symbolize(*options); });
}

}  // namespace lockscope::cli
