#!/usr/bin/env bash
# perf's own parser as the judge of lockrec's probe definitions: `perf probe --dry-run --verbose`
# parses every --add before it needs kprobes, printing what it understood. For each definition
# lockrec would add (x86_64, arm64 lockdep, DWARF names), perf must parse the function, whether it
# is a return probe, and the argument lockrec meant. Needs perf and python3; no root, no kprobes.
# Usage: perf_probe_syntax.sh LOCKREC FIXTURES_DIR
set -euo pipefail
lockrec=$1
fixtures=$2
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
command -v perf >/dev/null || skip "perf is not installed (Debian: linux-perf)"
command -v python3 >/dev/null || skip "python3 is not installed (setup.sh installs it)"

check_tree() {  # fixture tree, then lockrec options
  local tree=$1 && shift
  echo "== $tree $*"
  local line
  line=$("$lockrec" --dry-run --system-root "$fixtures/$tree" --release --trylock-result "$@" -- true 2>/dev/null |
    grep -- ' --add ') || fail "no perf probe --add line"
  # Split the line as a shell would (lockrec prints it shell-quoted), without eval.
  local words=()
  mapfile -d '' words < <(printf '%s' "$line" | python3 -c 'import shlex, sys; sys.stdout.write("\0".join(shlex.split(sys.stdin.read())))')
  local args=() definitions=() i
  for ((i = 2; i < ${#words[@]}; i++)); do
    [ "${words[i]}" = --quiet ] && continue  # perf refuses --quiet with --verbose
    args+=("${words[i]}")
    [ "${words[i]}" = --add ] && definitions+=("${words[i + 1]}")
  done
  local parsed
  parsed=$(perf probe --dry-run --verbose "${args[@]}" 2>&1 || true)
  [ "$(grep -c '^probe-definition(' <<<"$parsed")" = "${#definitions[@]}" ] ||
    fail "perf parsed $(grep -c '^probe-definition(' <<<"$parsed") of ${#definitions[@]} definitions: $(grep -i -m3 'error\|fail' <<<"$parsed")"
  for ((i = 0; i < ${#definitions[@]}; i++)); do
    local definition=${definitions[i]}
    local target=${definition#*=}
    local function=${target%% *} returns=0 argument=${target#* }
    [[ $function == *%return ]] && function=${function%\%return} returns=1
    # perf echoes the definition, then what it made of it.
    local block
    block=$(grep -F -x -A2 "probe-definition($i): $definition" <<<"$parsed") || fail "perf did not take: $definition"
    grep -q "^symbol:$function file:(null) line:0 offset:0 return:$returns " <<<"$block" ||
      fail "perf read the function of '$definition' otherwise: $block"
    local name=${argument%%=*} value=${argument#*=}
    local expected="parsing arg: $argument into name:$name ${value%:x64}"
    [[ $value == *:x64 ]] && expected="parsing arg: $argument into name:$name type:x64 ${value%:x64}"
    grep -q -F -x "$expected" <<<"$block" || fail "perf read the argument of '$definition' otherwise: $block"
  done
  echo "perf parsed all ${#definitions[@]} definitions as meant"
}

check_tree x86_64
check_tree arm64-lockdep
check_tree x86_64 --vmlinux /dev/null
echo PASS
