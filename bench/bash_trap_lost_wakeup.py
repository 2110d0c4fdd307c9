#!/usr/bin/env python3
"""Reproduces the lost wake-up behind issue 25's CI hang, on demand (not in CI).

The fake perf of tests/recorder/fake-perf, as it was, waited for lockrec's SIGINT in bash with
`trap ... INT` and a blocking `read` on its control pipe. When the SIGINT arrives after bash has
looked for pending traps and before read(2) blocks, bash's handler runs, read(2) blocks anyway, and
the trap never runs: the script waits forever. This runs that pattern RUNS times, sending SIGINT at
delays from 0 to 3 ms after the ack (the window moves with load), and counts the runs that are
still alive 2 s later; for each it prints the kernel's view: wait channel, the system call it sits
in, and its pending and caught signals.

Usage: bash_trap_lost_wakeup.py [blocking-read | sleep-loop] [RUNS]
  blocking-read  the old wait:  while read -r command <&3; do :; done
  sleep-loop     the fake perf's wait now:  while :; do sleep 0.1; done

Seen on the 2-CPU development machine (bash 5.2.15): blocking-read hung in 10 of 3,000 runs, and 12
and 5 of 1,500 with perf recording signal:signal_generate/deliver and syscalls:sys_enter/exit_read
(in each hung run the handler ran, then read(2) was entered and never returned); sleep-loop hung
in 0 of 2,000 with stress-ng --cpu 1 beside it.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

WAITS = {
    "blocking-read": "while read -r command <&3; do :; done",
    "sleep-loop": "while :; do sleep 0.1; done",
}


def main():
    wait = sys.argv[1] if len(sys.argv) > 1 else "blocking-read"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    if wait not in WAITS:
        sys.exit(f"usage: {sys.argv[0]} [{' | '.join(WAITS)}] [RUNS]")
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as script:
        script.write("trap 'exit 0' INT\nread -r command <&3\necho ack >&4\n" + WAITS[wait] + "\n")
    hangs = 0
    try:
        for run in range(runs):
            control_read, control_write = os.pipe()
            ack_read, ack_write = os.pipe()

            def place_fds():  # in the child: the control pipe at fd 3, the ack pipe at fd 4
                control, ack = os.dup(control_read), os.dup(ack_write)
                os.dup2(control, 3)
                os.dup2(ack, 4)

            victim = subprocess.Popen(["bash", script.name], preexec_fn=place_fds, close_fds=False)
            os.close(control_read)
            os.close(ack_write)
            os.write(control_write, b"enable\n")
            os.read(ack_read, 16)
            time.sleep((run * 37 % 300) / 100000)  # 0 to 3 ms
            os.kill(victim.pid, signal.SIGINT)
            try:
                victim.wait(timeout=2)
            except subprocess.TimeoutExpired:
                hangs += 1
                proc = f"/proc/{victim.pid}"
                wchan = open(f"{proc}/wchan").read()
                syscall = open(f"{proc}/syscall").read().split()[:2]
                masks = [line.strip() for line in open(f"{proc}/status")
                         if line.startswith(("SigPnd", "ShdPnd", "SigCgt"))]
                print(f"run {run}: pid {victim.pid} still waits 2 s after SIGINT: wchan={wchan} "
                      f"syscall={' '.join(syscall)} {' '.join(masks)}", flush=True)
                victim.kill()
                victim.wait()
            os.close(control_write)
            os.close(ack_read)
    finally:
        os.unlink(script.name)
    print(f"{wait}: {runs} runs, {hangs} hung")


if __name__ == "__main__":
    main()
