#!/usr/bin/env python3
"""Writes the side file lockrec writes beside rec.perf.data, in kprobe or contention mode, with some
fields replaced (PATCH's kernel object replaces only the kernel fields it has).

Usage: write_lockrec_side_file.py PATH kprobe|contention [PATCH-JSON]
"""
import json
import sys

path, mode = sys.argv[1], sys.argv[2]
patch = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
kprobe = mode == "kprobe"
probes = ["_raw_spin_lock", "_raw_spin_unlock", "mutex_lock"] if kprobe else []
side = {
    "format_version": 1, "perf_data": "rec.perf.data", "kallsyms": "rec.perf.data.kallsyms", "mode": mode,
    "kernel": {"release": "6.1.0-test", "machine": "x86_64", "build_id": None},
    "modules": [], "events": [],
    "perf_record": ["perf", "record"], "perf_probe": ["perf", "probe"] if kprobe else [],
    "command": ["insmod", "lockscope_lockdep.ko"], "command_status": {"exit_code": 0},
    "probes": [{"event": "lockrec:" + f, "definition": "", "function": f, "kind": "spinlock",
                "flavour": "plain", "role": "acquire"} for f in probes],
    "skipped": [{"function": f, "kind": "spinlock", "flavour": "plain", "role": role, "reason": reason}
                for f, role, reason in ([("_raw_spin_lock_nested", "acquire", "not in this kernel"),
                                         ("mutex_lock_nested", "acquire", "not in this kernel"),
                                         ("_raw_spin_trylock", "trylock-return", "needs --trylock-result")]
                                        if kprobe else [])],
}
for key, value in patch.items():
    if key == "kernel":  # one of its fields
        side[key].update(value)
    else:
        side[key] = value
with open(path, "w") as file:
    json.dump(side, file, indent=2)
