#!/bin/sh
# The guest side of the guest test: `sh /out/steps.sh STEP...` runs each step in order inside the
# guest (busybox sh), leaving its files in /out for the host to check. A step that cannot do its work
# says why on stderr and the scenario goes on: the host's checks decide what failed.
out=/out
rounds=${LOCKSCOPE_GUEST_ROUNDS:-5}

# Seconds since boot, to the centisecond.
now() { cut -d' ' -f1 /proc/uptime; }

cgroup_ready() {
  [ -e /sys/fs/cgroup/cgroup.controllers ] || mount -t cgroup2 none /sys/fs/cgroup
  echo "+pids +memory" >/sys/fs/cgroup/cgroup.subtree_control
}

# A fixed workload that reaches named locks: unshare -U takes ucounts_lock (_raw_spin_lock_irq),
# mkdir/rmdir of a cgroup with controllers takes cgroup_idr_lock (_raw_spin_lock_bh) and
# cgroup_mutex; forks take tasklist_lock (rwlock write), reading /proc takes it for read.
workload() {
  cgroup_ready
  i=0
  while [ "$i" -lt "$rounds" ]; do
    unshare -U true
    mkdir "/sys/fs/cgroup/lockscope-$i" && rmdir "/sys/fs/cgroup/lockscope-$i"
    cat /proc/[0-9]*/status >/dev/null 2>&1
    i=$((i + 1))
  done
  find /sys/kernel/debug/kprobes /proc/sys/kernel >/dev/null 2>&1
  dd if=/dev/zero of=/tmp/lockscope-dd bs=64k count=64 2>/dev/null && rm -f /tmp/lockscope-dd
}

# The workload timed from inside the recording, so probe set-up does not count: writes seconds to $1.
timed_workload() {
  start=$(now)
  workload
  end=$(now)
  echo "$start $end" | awk '{printf "%.2f\n", $2 - $1}' >"$1"
}

# What kprobes exist now, by perf's and by the kernel's account, into $out/$1.probes and
# $1.kprobe_events: the host checks both are empty of lockrec's.
probes_left() {
  perf probe -l >"$out/$1.probes" 2>&1
  cat /sys/kernel/tracing/kprobe_events >"$out/$1.kprobe_events"
}

# Copies recording /tmp/$1.data and lockrec's side files into the share.
keep() {
  for file in /tmp/"$1".data /tmp/"$1".data.kallsyms /tmp/"$1".data.lockrec.json; do
    [ -e "$file" ] && cp "$file" "$out/"
  done
  rm -f /tmp/"$1".data*
}

# Runs lockrec on `sleep 30`, hands its pid to $2 (a function) once it records, and writes lockrec's
# exit status to $out/$1.status. lockrec runs in the foreground and a watcher in the background
# sends the signal: a background command of a shell without job control (and busybox sh has none
# without a terminal) starts with SIGINT ignored, as would its COMMAND, so SIGINT would mean nothing.
interrupted_recording() {
  rm -f /tmp/recorder.pid
  watch_and_act "$1" "$2" &
  watcher=$!
  sh -c 'echo $$ >/tmp/recorder.pid; exec lockrec -o "/tmp/$0.data" -- sleep 30' "$1" 2>"$out/$1.err"
  echo $? >"$out/$1.status"
  wait "$watcher"
  keep "$1"
  probes_left "$1"
}
watch_and_act() {
  tries=0
  until grep -q "recording in " "$out/$1.err" 2>/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -gt 600 ] && { echo "steps: lockrec never started recording for $1" >&2; return 1; }
    sleep 0.1
  done
  sleep 1
  "$2" "$(cat /tmp/recorder.pid)"
}
interrupt_lockrec() { kill -INT "$1"; }
kill_perf() { kill -KILL $(pidof perf); }

# The main recording: kprobe mode with releases and trylock results, over the fixed workload.
step_main() {
  lockrec --mode kprobe --release --trylock-result -o /tmp/main.data -- \
    sh "$out/steps.sh" timed_workload_into "$out/main.elapsed" 2>"$out/main.err"
  echo $? >"$out/main.status"
  keep main
  probes_left main
}

step_sigint() { interrupted_recording sigint interrupt_lockrec; }
step_sigkill_perf() { interrupted_recording sigkill kill_perf; }

# The workload's slowdown under lockrec, in this same boot: bare, under lockrec, under lockrec
# --release, each timed from inside.
step_slowdown() {
  export LOCKSCOPE_GUEST_ROUNDS=10
  rounds=$LOCKSCOPE_GUEST_ROUNDS
  timed_workload "$out/slowdown.bare"
  lockrec -o /tmp/slow.data -- sh "$out/steps.sh" timed_workload_into "$out/slowdown.lockrec" 2>/dev/null
  lockrec --release -o /tmp/slow.data -- sh "$out/steps.sh" timed_workload_into "$out/slowdown.release" 2>/dev/null
  rm -f /tmp/slow.data*
  probes_left slowdown
}

# A short recording for a KASLR boot: are names still right when the kernel moved.
step_kaslr() {
  LOCKSCOPE_GUEST_ROUNDS=3 lockrec -o /tmp/kaslr.data -- sh "$out/steps.sh" timed_workload_into "$out/kaslr.elapsed" 2>"$out/kaslr.err"
  echo $? >"$out/kaslr.status"
  keep kaslr
  probes_left kaslr
}

# The lockdep scenario module (tests/guest/lockdep-module) loaded under lockrec --release. It stays
# loaded until lockrec has written its side files, so FILE.kallsyms names the module's locks.
step_lockdep() {
  lockrec --release --trylock-result -o /tmp/lockdep.data -- insmod /modules/lockscope_lockdep.ko \
    2>"$out/lockdep.err"
  echo $? >"$out/lockdep.status"
  keep lockdep
  rmmod lockscope_lockdep || echo "steps: rmmod lockscope_lockdep failed" >&2
  probes_left lockdep
}

# The small real kprobe recording committed under fixtures/ (LOCKSCOPE_UPDATE_FIXTURE=1 on the host):
# one round of the workload, compressed.
step_fixture() {
  LOCKSCOPE_GUEST_ROUNDS=1 lockrec -z --release --trylock-result -o /tmp/fixture.data -- \
    sh "$out/steps.sh" timed_workload_into "$out/fixture.elapsed" 2>"$out/fixture.err"
  echo $? >"$out/fixture.status"
  keep fixture
  probes_left fixture
}

if [ "${1:-}" = timed_workload_into ]; then
  timed_workload "$2"
  exit
fi
for step in "$@"; do
  echo "steps: $step at $(now) s"
  "step_$step"
done
