#!/usr/bin/env bash
# Installs every build, run and test dependency from Debian 12 packages and builds lockscope into
# build/. Idempotent and non-interactive; run as root.
set -euo pipefail
cd "$(dirname "$0")"

packages=(
  # build
  cmake g++ make pkg-config
  libdw-dev libelf-dev libtraceevent-dev libzstd-dev
  # their archives and those of what libdw needs: linked statically (LOCKSCOPE_STATIC_DEPS)
  zlib1g-dev liblzma-dev libbz2-dev
  libboost-graph-dev libcli11-dev nlohmann-json3-dev catch2
  # run: the recorder drives perf; tests compare against perf, gdb and nm
  linux-perf zstd binutils elfutils gdb stress-ng python3 time graphviz
  # the guest test boots Debian's stock kernel (kprobes) under qemu from a busybox initramfs
  qemu-system-x86 busybox-static cpio
  # bench/: whole-process timings
  hyperfine
  # the format and lint checks (tests/support/check-format, check-tidy): the tree follows Debian
  # 12's clang-format and clang-tidy
  clang-format clang-tidy
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: missing packages: ${missing[*]}; run as root (sudo ./setup.sh)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

build_dir=${LOCKSCOPE_BUILD_DIR:-build}
# Warnings are errors only where LOCKSCOPE_WERROR=ON asks for it (tests/run and CI do): a user's
# build must not fail on a warning a newer compiler adds.
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=${LOCKSCOPE_BUILD_TYPE:-RelWithDebInfo} \
  -DLOCKSCOPE_WERROR=${LOCKSCOPE_WERROR:-OFF} ${LOCKSCOPE_CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" -j "$(nproc)"
