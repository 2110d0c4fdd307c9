"""What perf itself says about a recording, for tests that check lockanalyze against it."""
import re
import subprocess

SAMPLE_LINE = re.compile(r"\s*(\d+)\s+(\d+)\.(\d{9}):\s+\S+:\s.*lock=0x([0-9a-f]+)")


class KernelStacks:
    """The kernel frames (sym+off) of lock samples as `perf script -k vmlinux` names them, for the
    given lock addresses: the first sample per (pid, lock), and every sample by (time in ns, lock)."""

    def __init__(self, recording, vmlinux, lock_addresses):
        script = subprocess.run(["perf", "script", "-i", recording, "-k", vmlinux, "--ns",
                                 "-F", "pid,time,event,trace,ip,sym,symoff"],
                                check=True, capture_output=True, text=True, errors="replace").stdout
        wanted = set(lock_addresses)
        self.first_by_pid = {}
        self.by_time = {}
        current = None
        for line in script.splitlines():
            if not line.startswith("\t") and line.strip():
                current = None
                match = SAMPLE_LINE.match(line)
                if match and int(match[4], 16) in wanted:
                    lock = int(match[4], 16)
                    current = []
                    self.by_time[(int(match[2]) * 1_000_000_000 + int(match[3]), lock)] = current
                    self.first_by_pid.setdefault((int(match[1]), lock), current)
            elif current is not None and line.startswith("\t"):
                address, symbol = line.split()[:2]
                if int(address, 16) >= 0xffff000000000000:
                    # A frame neither can name: perf says [unknown], lockanalyze gives the address.
                    current.append(f"0x{int(address, 16):x}" if symbol == "[unknown]" else symbol)

    def first_stack_of(self, holder, lock):
        """What perf shows for a report holder's first stack: its pid's first sample of the lock,
        or for a pseudo-holder ([hardirq], [softirq]: no pid of its own) the sample at its first time."""
        if holder["pid"] < 0:
            return self.by_time.get((holder["first_time_ns"], lock))
        return self.first_by_pid.get((holder["pid"], lock))


def kallsyms_names(path):
    """{name: [addresses]} of a kallsyms file (lockrec's FILE.kallsyms), to check names of frames
    outside the vmlinux (ftrace trampolines, modules) that `perf script -k vmlinux` cannot name."""
    names = {}
    try:
        with open(path, errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3:
                    names.setdefault(fields[2], []).append(int(fields[0], 16))
    except OSError:
        pass
    return names


def stacks_agree(ours, theirs, kallsyms):
    """Equal frame by frame; where perf could only give an address, lockanalyze may have named it
    from kallsyms (`kallsyms_names`), and then name+offset must land on that address."""
    if theirs is None or len(ours) != len(theirs):
        return False
    for our_frame, their_frame in zip(ours, theirs):
        if our_frame == their_frame:
            continue
        if not their_frame.startswith("0x") or "+0x" not in our_frame:
            return False
        name, offset = our_frame.rsplit("+0x", 1)
        if int(their_frame, 16) - int(offset, 16) not in kallsyms.get(name, []):
            return False
    return True


def check_first_stacks(check, locks, recording, vmlinux, names, label=""):
    """The report's `locks` (its JSON "locks") are exactly `names`, and every holder's first stack
    equals `perf script -k vmlinux` (`stacks_agree`, with the recording's kallsyms side file if it has
    one). `check(condition, what, detail)` records each result. Returns the locks by name."""
    by_name = {lock["name"]: lock for lock in locks}
    check(sorted(by_name) == sorted(names), f"{label}the report names {sorted(names)}", f"named: {sorted(by_name)}")
    addresses = {name: int(lock["address"], 16) for name, lock in by_name.items()}
    oracle = KernelStacks(recording, vmlinux, addresses.values())
    kallsyms = kallsyms_names(recording + ".kallsyms")
    for name, lock in by_name.items():
        for holder in lock["holders"]:
            ours = [frame["symbol"] for frame in holder["first_stack"]]
            theirs = oracle.first_stack_of(holder, addresses[name])
            check(stacks_agree(ours, theirs, kallsyms),
                  f"{label}{name} {holder['holder']}: first stack ({len(ours)} frames) equals perf script -k "
                  "vmlinux (frames it cannot name checked against the kallsyms side file)",
                  f"ours {ours}\n     theirs {theirs}")
    return by_name
