#!/usr/bin/env python3
"""What the kernel source and gdb say a heap lock's class is, independently of lockscope.

For the N busiest dynamic/per-cpu locks of a lockanalyze JSON report, and for each distinct call
site (return address of the lock function, frame 1 of a holder's first stack):
  - addr2line -i gives the inline chain at pc = return address - 1, innermost first;
  - from the innermost level outward, the source line holds a lock call such as
    `spin_lock(&this_parent->d_lock)`; a level whose argument is the wrapper's own lock parameter
    (`raw_spin_lock(&lock->rlock)` inside spin_lock) is skipped, the real expression is outside;
  - gdb on the vmlinux (no running kernel) gives the type of the base variable in the scope of
    that level at pc (gdb.block_for_pc), and checks the member path on that type, expanding
    member macros (`#define d_lock d_lockref.lock`) found in the kernel headers.
The class is `type.member.path`, evaluable in gdb as `((struct type *)0)->member.path`.

Prints one JSON object per (lock, call site) on stdout, with `class` or null and a `reason`, and a
summary on stderr. The same file runs inside gdb (it imports gdb then) to answer the type questions:
one gdb process for all call sites, because loading the vmlinux alone takes ~18 s.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ADDR2LINE_TIMEOUT = 300
GDB_TIMEOUT = 900

# Lock functions and macros whose first argument is the lock. Prefix match: spin_lock covers
# spin_lock_irqsave, spin_lock_nested, spin_lock_bh...
LOCK_CALL = re.compile(r"\b(_?raw_spin_(?:lock|trylock)\w*|spin_(?:lock|trylock)\w*|"
                       r"_?raw_(?:read|write)_lock\w*|(?:read|write)_(?:lock|trylock)\w*|"
                       r"mutex_(?:lock|trylock)\w*|down_(?:read|write)\w*|xa_lock\w*|xas_lock\w*)\s*\(")
# Wrapper macros that lock a member of their argument rather than the argument itself:
# `#define xa_lock_irq(xa) spin_lock_irq(&(xa)->xa_lock)`. The suffix is appended to the path.
MEMBER_OF_ARGUMENT = {"xa_lock": ".xa_lock"}
IDENT = r"[A-Za-z_]\w*"
# `&var->member`, then any number of `.member` or `->member`.
PLAIN_ARGUMENT = re.compile(rf"^&\s*({IDENT})\s*->\s*({IDENT}(?:\s*(?:\.|->)\s*{IDENT})*)$")
BARE_VARIABLE = re.compile(rf"^({IDENT})$")
# Object-like macros whose expansion is a member path: `#define d_lock d_lockref.lock`.
MEMBER_MACRO = re.compile(rf"^[ \t]*#[ \t]*define[ \t]+({IDENT})[ \t]+"
                          rf"({IDENT}(?:[ \t]*(?:\.|->)[ \t]*{IDENT})*)[ \t]*(?:/[*/].*)?$", re.M)
# Type names (before or after typedefs) that are locks themselves: a variable of such a type (or a
# pointer to one) is a wrapper's parameter, not the object holding the lock.
LOCK_TYPE_NAMES = {"spinlock_t", "spinlock", "raw_spinlock_t", "raw_spinlock", "rwlock_t",
                   "arch_spinlock_t", "arch_rwlock_t", "qspinlock", "qrwlock",
                   "mutex", "rw_semaphore", "seqlock_t"}
# Build directories the vmlinux's DWARF names files under; the source tree is their root.
BUILD_PREFIXES = ("debian/build/build_amd64_none_amd64/", "/build/reproducible-path/linux-6.1.192/")


# ---------------------------------------------------------------------------------------------
# Inside gdb: answer the type questions the outer process wrote to a JSON file.
# ---------------------------------------------------------------------------------------------

def gdb_main(query_path, answer_path):
    import gdb  # only exists inside gdb

    with open(query_path) as f:
        query = json.load(f)
    macros = query["macros"]
    struct_files = {}

    def type_names(t):
        """The names t goes by through qualifiers, typedefs and pointers, and the final type."""
        names = []
        while True:
            t = t.unqualified()
            if t.name:
                names.append(t.name)
            if t.tag:
                names.append(t.tag)
            if t.code == gdb.TYPE_CODE_TYPEDEF:
                t = t.target()
            elif t.code == gdb.TYPE_CODE_PTR:
                t = t.target()
            else:
                return names, t

    def scope_blocks(pc):
        """Blocks from the innermost at pc outward, cut into one list per inline level: a block
        with .function set closes a level (an inlined instance, finally the real function)."""
        levels, current = [], []
        block = gdb.block_for_pc(pc)
        while block is not None and not block.is_global and not block.is_static:
            current.append(block)
            if block.function is not None:
                levels.append(current)
                current = []
            block = block.superblock
        return levels

    def find_variable(blocks, name):
        for block in blocks:
            for sym in block:
                if sym.name == name and (sym.is_variable or sym.is_argument):
                    return sym, "local"
        # A file-scope or global pointer (`&some_global->lock`).
        sym = gdb.lookup_static_symbol(name) or gdb.lookup_global_symbol(name)
        if sym is not None and sym.is_variable:
            return sym, "global"
        return None, None

    def evaluates(expression):
        try:
            return gdb.parse_and_eval(expression), None
        except gdb.error as e:
            return None, str(e)

    def struct_file(tag):
        """The header that defines struct tag, per gdb's symtabs, to pick among same-named macros.
        gdb lists every file whose DWARF declares it (even .c files, with the header's line), so
        only a single distinct header counts. Slow (~40 s on vmlinux): used only on ambiguity."""
        if tag not in struct_files:
            out = gdb.execute(f"info types ^{tag}$", to_string=True)
            headers = set()
            for file in re.findall(r"^File (.*):$", out, re.M):
                for prefix in BUILD_PREFIXES:
                    file = file.removeprefix(prefix)
                if file.endswith(".h"):
                    headers.add(file.removeprefix("./"))
            struct_files[tag] = headers.pop() if len(headers) == 1 else None
        return struct_files[tag]

    def resolve_path(tag, kind, path):
        """Checks `((kind tag *)0)->path` component by component, expanding member macros where a
        component is not a member; `->` inside the path moves to the pointed-to struct. Returns the
        class (final struct + path within it), offset, the expanded path and notes, or a reason."""
        components = re.findall(rf"(\.|->)?\s*({IDENT})", path)
        base, within, notes = f"(({kind} {tag} *)0)", [], []
        todo = [("->", name) if i == 0 else (sep, name) for i, (sep, name) in enumerate(components)]
        class_tag, expansions = tag, 0
        while todo:
            sep, name = todo.pop(0)
            if sep == "->" and within:
                # Dereference: the rest of the path belongs to the struct this member points to.
                value, error = evaluates(base + "".join(within))
                if value is None:
                    return None, f"`{base}{''.join(within)}` does not evaluate: {error}"
                _, target = type_names(value.type)
                if value.type.strip_typedefs().code != gdb.TYPE_CODE_PTR or not target.tag:
                    return None, f"`{''.join(within)[2:]}` of {class_tag} is not a pointer to a struct"
                kind = "union" if target.code == gdb.TYPE_CODE_UNION else "struct"
                class_tag, base, within = target.tag, f"(({kind} {target.tag} *)0)", []
            step = ("->" if not within else ".") + name
            value, error = evaluates("&" + base + "".join(within) + step)
            if value is not None:
                within.append(step)
                continue
            candidates = []
            for expansion, file in macros.get(name, []):
                expanded = re.findall(rf"(\.|->)?\s*({IDENT})", expansion)
                first_sep = "->" if not within else "."
                trial = [(first_sep if i == 0 else s, n) for i, (s, n) in enumerate(expanded)]
                text = "".join(s + n for s, n in trial)
                if "->" in text[2:]:
                    ok = True  # crosses a pointer: checked as the loop goes on
                else:
                    ok = evaluates("&" + base + "".join(within) + text)[0] is not None
                if ok:
                    candidates.append((trial, file, expansion))
            if not candidates:
                return None, f"`{name}` is not a member of {class_tag} and no header macro makes it one ({error})"
            if len({c[2] for c in candidates}) > 1:
                # Prefer the macro from the struct's own header, then from its directory.
                home = struct_file(class_tag) or ""
                preferred = [c for c in candidates if home and c[1] == home] or \
                            [c for c in candidates if home and os.path.dirname(c[1]) == os.path.dirname(home)]
                if len({c[2] for c in preferred}) != 1:
                    return None, f"`{name}` of {class_tag}: several header macros fit: " + \
                        ", ".join(sorted({f'{c[2]} ({c[1]})' for c in candidates}))
                candidates = preferred
            trial, file, expansion = candidates[0]
            expansions += 1
            if expansions > 10:  # `#define a b` / `#define b a` must not loop
                return None, f"member macros of {class_tag} expand more than 10 times: {notes}"
            notes.append(f"#define {name} {expansion} ({file})")
            # The expansion replaces the component; its first part keeps the original separator.
            todo = [(sep if i == 0 else s, n) for i, (s, n) in enumerate(trial)] + todo
        value, error = evaluates("&" + base + "".join(within))
        if value is None:
            return None, f"`&{base}{''.join(within)}` does not evaluate: {error}"
        member_path = "".join(within)[2:]
        return {"class": f"{class_tag}.{member_path}", "offset": int(value),
                "member_path": member_path, "macros": notes}, None

    answers = []
    for site in query["sites"]:
        pc = int(site["pc"], 16)
        try:
            levels = scope_blocks(pc)
        except RuntimeError as e:
            answers.append({"pc": site["pc"], "error": f"gdb has no block at pc: {e}"})
            continue
        result = {"pc": site["pc"], "gdb_functions": [b[-1].function.name for b in levels], "levels": []}
        for ask in site["levels"]:
            answer = {"index": ask["index"]}
            result["levels"].append(answer)
            i = ask["index"]
            if i >= len(levels):
                answer["reason"] = f"gdb sees only {len(levels)} inline levels at pc"
                continue
            gdb_function = levels[i][-1].function.name
            if gdb_function != ask["function"]:
                answer["reason"] = f"gdb's level {i} is {gdb_function}, addr2line's is {ask['function']}"
                continue
            sym, scope = find_variable(levels[i], ask["var"])
            if sym is None:
                answer["reason"] = f"gdb finds no variable `{ask['var']}` in {gdb_function} at pc"
                continue
            var_type = sym.type
            names, final = type_names(var_type)
            answer.update(var_type=str(var_type), scope=scope, is_argument=sym.is_argument)
            if LOCK_TYPE_NAMES & set(names):
                answer["lock_type"] = True
                continue
            if ask.get("path") is None:
                answer["reason"] = f"`{ask['var']}` ({var_type}) is not a lock type"
                continue
            if final.code not in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION) or not final.tag:
                answer["reason"] = f"`{ask['var']}` has type {var_type}, not a pointer to a named struct"
                continue
            kind = "union" if final.code == gdb.TYPE_CODE_UNION else "struct"
            answer["base_type"] = f"{kind} {final.tag}"
            resolved, reason = resolve_path(final.tag, kind, ask["path"])
            if resolved is None:
                answer["reason"] = reason
            else:
                answer.update(resolved)
        answers.append(result)
    with open(answer_path, "w") as f:
        json.dump(answers, f)


# ---------------------------------------------------------------------------------------------
# Outside gdb: the report, addr2line, the source, and the decision per call site.
# ---------------------------------------------------------------------------------------------

def log(message):
    print(f"lock_class_oracle: {message}", file=sys.stderr, flush=True)


def call_sites(report_path, top):
    """(lock, acquisitions, return address) for the top busiest dynamic/per-cpu locks, each call
    site once per lock, in report order."""
    with open(report_path) as f:
        report = json.load(f)
    locks = [lock for lock in report["locks"]
             if lock.get("storage") in ("dynamic", "per-cpu") or lock.get("percpu")]
    locks.sort(key=lambda lock: -lock["acquisitions"])
    sites = []
    for lock in locks[:top]:
        seen = set()
        for holder in lock["holders"]:
            for frames in [holder["first_stack"]] + list(holder.get("more_stacks") or []):
                if len(frames) < 2:
                    log(f"lock {lock['address']}: a stack of {holder['holder']} has no caller frame, skipped")
                    continue
                ret = frames[1]["address"]
                if ret not in seen:
                    seen.add(ret)
                    sites.append({"lock": lock["address"], "acquisitions": lock["acquisitions"],
                                  "lock_function": frames[0]["symbol"], "return_address": ret,
                                  "caller": frames[1]["symbol"]})
    return sites


def inline_chains(vmlinux, pcs):
    """{pc: [(function, file, line)]} innermost first, from one addr2line process."""
    try:
        out = subprocess.run(["addr2line", "-a", "-i", "-f", "-e", vmlinux] + pcs, check=True,
                             capture_output=True, text=True, timeout=ADDR2LINE_TIMEOUT).stdout.splitlines()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        sys.exit(f"lock_class_oracle: addr2line failed: {e}")
    chains, current, i = {}, None, 0
    while i < len(out):
        if re.fullmatch(r"0x[0-9a-f]+", out[i]):
            current = chains.setdefault(hex(int(out[i], 16)), [])
            i += 1
            continue
        function, location = out[i], out[i + 1] if i + 1 < len(out) else "??:0"
        file, _, line = location.rpartition(":")
        line = re.match(r"\d*", line)[0]  # drops " (discriminator N)"; "?" when unknown
        if current is not None:
            current.append((function, file, int(line) if line else 0))
        i += 2
    return chains


def source_file(root, file):
    """The file in the source tree that a DWARF file name refers to, or None."""
    for prefix in BUILD_PREFIXES:
        if file.startswith(prefix):
            file = file[len(prefix):]
    parts = file.lstrip("/").split("/")
    for start in range(len(parts)):  # unknown prefixes: the longest suffix that exists
        path = os.path.join(root, *parts[start:])
        if os.path.isfile(path):
            return path
    return None


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def statement_at(path, line):
    """The text from `line` on, joined with the following lines until the parentheses opened on
    it close (a lock call may span lines). Limited to 10 lines."""
    with open(path, errors="replace") as f:
        lines = f.read().split("\n")
    text, depth = "", 0
    for number in range(line, min(line + 10, len(lines) + 1)):
        piece = strip_comments(lines[number - 1])
        text += (" " if text else "") + piece.strip()
        depth = text.count("(") - text.count(")")
        if depth <= 0 and "(" in text:
            break
    return " ".join(text.split())


def first_argument(text, open_paren):
    """The first argument of the call whose `(` is at open_paren, or None if unbalanced."""
    depth, start = 0, open_paren + 1
    for i in range(open_paren, len(text)):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return text[start:i].strip()
        elif c == "," and depth == 1:
            return text[start:i].strip()
    return None


def lock_calls(text):
    """[(call name, first argument, whole call)] of the lock calls in text."""
    calls = []
    for match in LOCK_CALL.finditer(text):
        argument = first_argument(text, match.end() - 1)
        if argument is not None:
            calls.append((match[1], argument, text[match.start():call_end(text, match.end() - 1)]))
    return calls


def call_end(text, open_paren):
    """The index just past the `)` matching the `(` at open_paren (or the end of text)."""
    depth = 0
    for i in range(open_paren, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    return len(text)


def parse_argument(call, argument):
    """(var, path) for `&var->path`, (var, None) for a bare variable, None otherwise."""
    argument = argument.strip()
    while argument.startswith("(") and first_argument(argument, 0) == argument[1:-1].strip():
        argument = argument[1:-1].strip()  # redundant parentheses
    argument = re.sub(r"\s+", "", argument)
    argument = argument.replace("&", "& ", 1)
    match = PLAIN_ARGUMENT.match(argument)
    if match:
        path = match[2].replace(" ", "")
        for prefix, suffix in MEMBER_OF_ARGUMENT.items():
            if call.startswith(prefix):
                path += suffix
        return match[1], path
    match = BARE_VARIABLE.match(argument)
    if match:
        return match[1], None
    return None


def header_macros(root, extra_dirs):
    """{name: [(expansion, file)]} for object-like macros expanding to a member path, from
    include/ and the directories of the call sites' sources (private headers like kernel/sched/sched.h)."""
    macros = {}
    dirs = [os.path.join(root, "include")] + sorted(extra_dirs)
    for top in dirs:
        walk = os.walk(top) if top.endswith("/include") else [(top, [], os.listdir(top))]
        for directory, _, files in walk:
            for name in files:
                if not name.endswith(".h"):
                    continue
                path = os.path.join(directory, name)
                with open(path, errors="replace") as f:
                    text = f.read()
                if "#" not in text:
                    continue
                for match in MEMBER_MACRO.finditer(text):
                    if match[1] == match[2]:
                        continue
                    entry = (re.sub(r"\s+", "", match[2]), os.path.relpath(path, root))
                    if entry not in macros.setdefault(match[1], []):
                        macros[match[1]].append(entry)
    return macros


def run_gdb(vmlinux, query):
    with tempfile.TemporaryDirectory(prefix="lock-class-oracle.") as tmp:
        query_path, answer_path = os.path.join(tmp, "query.json"), os.path.join(tmp, "answer.json")
        with open(query_path, "w") as f:
            json.dump(query, f)
        script = os.path.abspath(__file__)
        command = ["gdb", "-nx", "-batch", "-ex", "set pagination off",
                   "-ex", f"python import sys; sys.argv = [{script!r}, '--in-gdb', {query_path!r}, {answer_path!r}]",
                   "-x", script, vmlinux]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=GDB_TIMEOUT)
        except subprocess.TimeoutExpired:
            sys.exit(f"lock_class_oracle: gdb did not finish within {GDB_TIMEOUT} s")
        if not os.path.exists(answer_path):
            sys.exit(f"lock_class_oracle: gdb gave no answer (exit {done.returncode}):\n{done.stderr[-3000:]}")
        with open(answer_path) as f:
            return json.load(f)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vmlinux", required=True)
    parser.add_argument("--source", required=True, help="kernel source root (tests/support/fetch-kernel-source)")
    parser.add_argument("--report", required=True, help="lockanalyze --format json output")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()

    sites = call_sites(args.report, args.top)
    pcs = sorted({hex(int(site["return_address"], 16) - 1) for site in sites})
    log(f"{len(sites)} call sites ({len(pcs)} distinct pcs) of the top {args.top} dynamic/per-cpu locks")
    chains = inline_chains(args.vmlinux, pcs)

    # Per pc and inline level: the source statement and the lock call found there.
    levels_by_pc, source_dirs = {}, set()
    for pc in pcs:
        levels = []
        for index, (function, file, line) in enumerate(chains.get(pc, [])):
            level = {"index": index, "function": function, "file": file, "line": line}
            path = source_file(args.source, file) if line else None
            if path is None:
                level["reason"] = f"source file {file} not in the source tree"
            else:
                source_dirs.add(os.path.dirname(path))
                level["file"] = os.path.relpath(path, args.source)
                level["statement"] = statement_at(path, line)
                calls = lock_calls(level["statement"])
                if not calls:
                    level["reason"] = "no lock call on the line"
                elif len(set(calls)) > 1:
                    level["reason"] = "several lock calls on the line: " + "; ".join(c[2] for c in calls)
                else:
                    call, argument, level["expression"] = calls[0]
                    parsed = parse_argument(call, argument)
                    if parsed is None:
                        level["reason"] = f"argument `{argument}` is not a plain &var->member"
                    else:
                        level["var"], level["path"] = parsed
            levels.append(level)
        levels_by_pc[pc] = levels

    macros = header_macros(args.source, source_dirs)
    query = {"macros": macros, "sites": [
        {"pc": pc, "levels": [{"index": l["index"], "function": l["function"], "var": l["var"], "path": l["path"]}
                              for l in levels if "var" in l]}
        for pc, levels in levels_by_pc.items()]}
    log(f"asking gdb about {sum(len(s['levels']) for s in query['sites'])} lock expressions "
        f"({sum(len(v) for v in macros.values())} header member macros known)")
    answers = {a["pc"]: a for a in run_gdb(args.vmlinux, query)}

    found = 0
    for site in sites:
        pc = hex(int(site["return_address"], 16) - 1)
        out = dict(site, pc=pc, **{"class": None})
        answer = answers.get(pc, {})
        by_index = {a["index"]: a for a in answer.get("levels", [])}
        skipped = []
        levels = levels_by_pc[pc]
        if not levels:
            out["reason"] = "addr2line gives no location"
        for level in levels:
            where = f"{level['function']} {level['file']}:{level['line']}"
            if "var" not in level:
                # A level without a lock call is a caller of an inlined wrapper; go outward.
                # One with an unusable lock expression ends the search: that is the lock call.
                if level.get("reason", "").startswith(("no lock call", "source file")):
                    skipped.append(f"{where}: {level['reason']}")
                    continue
                out.update(level=where, expression=level.get("expression"), reason=level["reason"])
                break
            facts = by_index.get(level["index"], {})
            if facts.get("lock_type") and facts.get("is_argument") and level is not levels[-1]:
                # The wrapper's own parameter (`raw_spin_lock(&lock->rlock)` in spin_lock): the
                # expression naming the lock is in the caller, one level out.
                skipped.append(f"{where}: `{level['var']}` is the inlined wrapper's parameter ({facts['var_type']})")
                continue
            if facts.get("lock_type"):
                # A lock pointer held in a local (`ptl = pmd_lockptr(mm, pmd); spin_lock(ptl)`) or
                # a parameter of the real function: where it points is not in the source line.
                what = "parameter of the real function" if facts.get("is_argument") else "local variable"
                out.update(level=where, expression=level["expression"], var=level["var"],
                           var_type=facts["var_type"],
                           reason=f"the lock is reached through `{level['var']}`, a {what} of type "
                                  f"{facts['var_type']}, not a plain &var->member")
                break
            out.update(level=where, expression=level["expression"], var=level["var"],
                       var_type=facts.get("var_type"), base_type=facts.get("base_type"))
            if facts.get("class"):
                out.update({"class": facts["class"], "offset": facts["offset"], "macros": facts["macros"]})
                if facts.get("scope") == "global":
                    out["note"] = f"`{level['var']}` is a global variable"
                found += 1
            else:
                out["reason"] = facts.get("reason") or answer.get("error") or "gdb gave no answer"
            break
        else:
            if levels:
                out["reason"] = "no plain &var->member lock expression at any inline level"
                # Say what the wrapper's caller does instead (e.g. pte_offset_map_lock(...)).
                callers = [l for l in levels[1:] if "statement" in l]
                if callers:
                    out["reason"] += (f"; the wrapper's caller {callers[0]['function']} "
                                      f"{callers[0]['file']}:{callers[0]['line']} has `{callers[0]['statement']}`")
        out["skipped_levels"] = skipped
        print(json.dumps(out))
    log(f"{found} of {len(sites)} call sites have a class")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--in-gdb":
        gdb_main(sys.argv[2], sys.argv[3])
    else:
        main()
