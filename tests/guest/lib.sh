# Shell functions of the guest test, sourced by tests/guest/run: pick the kernel, fetch and cache its
# pieces outside the repo, build the initramfs around a freshly built lockrec, boot it under qemu.
# Everything downloaded or extracted lives in $guest_cache; nothing here writes into the repo.

guest_cache=${LOCKSCOPE_CACHE:-/var/cache/lockscope}/guest
guest_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
guest_top=$(cd "$guest_here/../.." && pwd)

guest_die() { echo "guest: $*" >&2; exit 1; }

# The modules /init loads, in load order, to mount the host's share over virtio 9p.
guest_modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
               netfs fscache 9pnet 9pnet_virtio 9p)

# The newest Debian 6.1 kernel ABI whose image and -dbg packages are both in the archive (the dbg
# package lags the image by a few ABIs), or LOCKSCOPE_GUEST_ABI.
guest_pick_abi() {
  if [ -n "${LOCKSCOPE_GUEST_ABI:-}" ]; then echo "$LOCKSCOPE_GUEST_ABI"; return; fi
  local listing abi
  listing=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64(-dbg)?$' | cut -d' ' -f1)
  abi=$(grep -- '-dbg$' <<<"$listing" | sed 's/^linux-image-//; s/-dbg$//' | sort -t- -k3,3n |
        while read -r candidate; do
          grep -qx "linux-image-$candidate" <<<"$listing" && echo "$candidate"
        done | tail -n1)
  [ -n "$abi" ] || guest_die "apt-cache knows no linux-image-6.1.0-N-amd64 with its -dbg package; run apt-get update (Debian 12 main)"
  echo "$abi"
}

# Caches vmlinuz and the share's modules of kernel $1 under $guest_cache/$1.
guest_fetch_kernel() {
  local abi=$1 dir="$guest_cache/$1" deb tmp
  [ -s "$dir/vmlinuz" ] && [ -s "$dir/modules/9p.ko" ] && [ -s "$dir/version" ] && return 0
  mkdir -p "$guest_cache/debs"
  deb=$(ls "$guest_cache/debs/linux-image-${abi}_"*.deb 2>/dev/null | head -n1 || true)
  if [ -z "$deb" ]; then
    (cd "$guest_cache/debs" && apt-get download "linux-image-$abi" >&2) ||
      guest_die "apt-get download linux-image-$abi failed"
    deb=$(ls "$guest_cache/debs/linux-image-${abi}_"*.deb | head -n1)
  fi
  tmp=$(mktemp -d "$guest_cache/extract.XXXXXX")
  local patterns=("./boot/vmlinuz-$abi")
  local module
  for module in "${guest_modules[@]}"; do patterns+=("*/$module.ko"); done
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards "${patterns[@]}" ||
    guest_die "cannot extract the kernel and 9p modules from $deb"
  mkdir -p "$tmp/modules"
  for module in "${guest_modules[@]}"; do
    find "$tmp/lib" -name "$module.ko" -exec mv {} "$tmp/modules/" \;
    [ -s "$tmp/modules/$module.ko" ] || guest_die "$deb has no $module.ko"
  done
  rm -rf "$dir" && mkdir -p "$dir"
  mv "$tmp/boot/vmlinuz-$abi" "$dir/vmlinuz"
  mv "$tmp/modules" "$dir/modules"
  dpkg-deb -f "$deb" Version >"$dir/version"  # the headers for the lockdep module must match it
  rm -rf "$tmp"
}

# Copies program $1 to $2 (a path inside the tree $3) with every shared library ldd names, at the
# same paths, so the guest's dynamic loader finds them.
guest_copy_program() {
  local program=$1 destination=$2 root=$3 library
  install -D -m 0755 "$program" "$root$destination"
  for library in $(ldd "$program" | grep -o '/[^ ]*'); do
    [ -e "$root$library" ] || install -D -m 0755 "$(readlink -f "$library")" "$root$library"
  done
}

# Builds $2 (a gzipped cpio) for kernel $1: busybox, /init, the 9p modules, perf and lockrec ($3)
# with their libraries, and any extra files given as host-path:guest-path pairs after it.
guest_build_initramfs() {
  local abi=$1 output=$2 lockrec=$3
  shift 3
  local root
  root=$(mktemp -d /tmp/lockscope-initramfs.XXXXXX)
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,etc,modules}
  install -m 0755 /bin/busybox "$root/bin/busybox"
  ln -s busybox "$root/bin/sh"  # /init's interpreter, before it installs the other applets
  install -m 0755 "$guest_here/init" "$root/init"
  cp "$guest_cache/$abi/modules/"*.ko "$root/modules/"
  guest_copy_program "$(command -v perf)" /usr/bin/perf "$root"
  guest_copy_program "$lockrec" /usr/bin/lockrec "$root"
  local pair
  for pair in "$@"; do install -D -m 0755 "${pair%%:*}" "$root${pair#*:}"; done
  echo "root:x:0:0:root:/root:/bin/sh" >"$root/etc/passwd"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$output"
  rm -rf "$root"
}

# Boots kernel $1 with initramfs $2, sharing directory $3 as /out, extra kernel arguments $4.
# The console goes to $3/console.log. Single-threaded TCG: multi-threaded TCG oopsed the guest in 6
# of 12 runs while kprobes were armed, single-threaded in 0 of 9. Returns qemu's status.
guest_boot() {
  local abi=$1 initrd=$2 share=$3 extra_args=$4
  timeout "${LOCKSCOPE_GUEST_TIMEOUT:-900}" qemu-system-x86_64 \
    -accel tcg,thread=single -cpu max -smp 2 -m 2048 \
    -kernel "$guest_cache/$abi/vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 quiet panic=-1 oops=panic $extra_args" \
    -virtfs "local,path=$share,mount_tag=out,security_model=none,id=out" \
    -nic none -nographic -no-reboot -monitor none -serial stdio </dev/null >"$share/console.log" 2>&1
}

# Whether the console log $1 shows the guest kernel oopsing or panicking (a known hazard of
# emulating it under TCG, not something lockscope did).
guest_oopsed() {
  grep -qE 'Oops:|BUG:|general protection fault|Kernel panic|invalid opcode:' "$1"
}
