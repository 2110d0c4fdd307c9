#!/usr/bin/env bash
# lockanalyze's command line as perf users expect it, on the committed kprobe fixture: ./perf.data
# when no file is given, -i FILE as in perf, --version, one documented status for usage errors
# (2), and --svg started without a shell, so a file name is only a file name.
# Usage: cli_test.sh LOCKANALYZE FIXTURE
set -euo pipefail
lockanalyze=$1
fixture=$2

source "$(dirname "$0")/../support/checks.sh"
work=$(mktemp -d /tmp/lockscope-cli.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

# The report names its input in its header, so each pair below names the same file.
cp "$fixture" perf.data
"$lockanalyze" perf.data >by_argument.txt 2>/dev/null
check "no file reads ./perf.data" cmp -s by_argument.txt <("$lockanalyze" 2>/dev/null)
check "-i FILE reads FILE" cmp -s by_argument.txt <("$lockanalyze" -i perf.data 2>/dev/null)
check "events -i FILE reads FILE" cmp -s <("$lockanalyze" events perf.data 2>/dev/null) <("$lockanalyze" events -i perf.data 2>/dev/null)
check "events with no file reads ./perf.data" cmp -s <("$lockanalyze" events perf.data 2>/dev/null) <("$lockanalyze" events 2>/dev/null)
rm perf.data
check "no ./perf.data: status 1, one line naming it" \
  test "$(status_of "$lockanalyze")" = 1 -a "$(grep -c . err.txt)" = 1 -a -n "$(grep -F 'perf.data' err.txt)"

mkdir -p a-directory
check "a directory as input: status 1, one line saying it is a directory" \
  test "$(status_of "$lockanalyze" a-directory)" = 1 -a "$(grep -c . err.txt)" = 1 -a -n "$(grep 'is a directory' err.txt)"

check "--version names the version and the git revision" \
  grep -Eq '^lockanalyze [0-9]+\.[0-9]+\.[0-9]+ \(git [0-9a-f]+(-dirty)?|unknown\)$' <("$lockanalyze" --version)
for usage in "--no-such-option" "--top many" "events --format nope" "report --stacks many" \
  "--lock 0xZZZ" "--lock 0x" "--pid -5" "--pid x" "--time 1,2,3" "--time 5,1" "--time nan,inf" "--time 1" \
  "--kernel-threads --no-kernel-threads"; do
  # shellcheck disable=SC2086
  check "usage error '$usage' exits 2" test "$(status_of "$lockanalyze" $usage "$fixture")" = 2
done

# Symbols of another boot are refused, never used: the fixture's kernel map puts _text at
# 0xffffffff81000000 (no KASLR); a kallsyms shifted by 16 MiB, as after a reboot, names every
# address wrongly and plausibly (issue 20).
printf "ffffffff82000000 T _text\nffffffff82000100 T _etext\n" >shifted.ks
printf "ffffffff81000000 T _text\nffffffff81000100 T _etext\n" >same-boot.ks
check "--kallsyms of the recorded boot is used" test "$(status_of "$lockanalyze" "$fixture" --kallsyms same-boot.ks)" = 0
check "--kallsyms of another boot: status 1, one line with both _text addresses" \
  test "$(status_of "$lockanalyze" "$fixture" --kallsyms shifted.ks)" = 1 -a "$(grep -c . err.txt)" = 1 -a \
  -n "$(grep "^lockanalyze: shifted.ks: is not the recorded kernel's kallsyms: its _text is 0xffffffff82000000 but the recording's kernel map puts _text at 0xffffffff81000000" err.txt)"
cp "$fixture" stale.data
cp shifted.ks stale.data.kallsyms
check "a stale FILE.kallsyms side file is refused the same way" \
  test "$(status_of "$lockanalyze" stale.data)" = 1 -a -n "$(grep "^lockanalyze: stale.data.kallsyms: is not the recorded kernel's kallsyms" err.txt)"
rm stale.data stale.data.kallsyms

# A --time window that selects nothing says the recording's span, in perf script's seconds.
first=$("$lockanalyze" events "$fixture" 2>/dev/null | awk -F, 'NR == 2 { printf "%.6f", $1 / 1e9 }')
check "--time outside the recording: status 0, a warning with the span from its first lock event" \
  test "$(status_of "$lockanalyze" "$fixture" --time 1,2)" = 0 -a \
  -n "$(grep "^lockanalyze: warning: --time selects none of the [0-9]* lock events: the recording's lock events span $first to [0-9.]* s" err.txt)"

# Output that cannot be written fails loudly, naming the output (issue 20: contention and symbolize
# exited 0 into /dev/full).
printf "ffffffff81000000 T _text\nffffffff81000100 T _etext\n" >ks
full_status() { local status=0; "$@" >/dev/full 2>err.txt || status=$?; echo "$status"; }
for command in "report" "events" "contention --kallsyms ks" "symbolize --kallsyms ks 0xffffffff81000010"; do
  # shellcheck disable=SC2086
  set -- $command
  if [ "$1" = symbolize ]; then status=$(full_status "$lockanalyze" "$@"); else status=$(full_status "$lockanalyze" "$@" "$fixture"); fi
  check "$1 into /dev/full exits 1 naming standard output" \
    test "$status" = 1 -a -n "$(grep -i 'standard output\|stdout' err.txt)"
done

if command -v dot >/dev/null; then
  name="x';touch INJECTED;'.svg"
  check "--svg with shell syntax in its name" test "$(status_of "$lockanalyze" "$fixture" --svg "$name")" = 0
  check "... writes a file of exactly that name" grep -q '<svg' "$name"
  check "... and runs nothing" test ! -e INJECTED
  check "--svg into a missing directory blames the directory, not graphviz" \
    test "$(status_of "$lockanalyze" "$fixture" --svg missing/graph.svg)" = 1 -a -n "$(grep 'directory .*missing does not exist' err.txt)"
else
  echo "note: graphviz (dot) is not installed, --svg not checked (setup.sh installs it)"
fi

end_checks
