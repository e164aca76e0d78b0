#!/usr/bin/env bash
# Long fuzzing runs of every reader: runs each `fuzz_*` test target of the workspace
# (crates/*/tests/fuzz_*.rs, one per reader: IDX, CIFAR, images, configs, weights, sweep
# configs...) in release mode, round after round with a fresh random seed and many cases,
# until MINUTES_PER_READER minutes of CPU time (user + system, of the test processes) are
# spent on it: the budget means the same on a busy machine, or niced in the background. Stops at the first failure (a panic, an
# abort, or a round that hangs) and prints the command that reproduces it.
#
# Usage: scripts/fuzz.sh [MINUTES_PER_READER]      (default 30)
#   FUZZ_TARGETS="fuzz_idx fuzz_image"   only these targets
#   FUZZ_CASES=N                         cases per property in the first round (default 2000;
#                                        later rounds aim at FUZZ_ROUND_SECONDS)
#   FUZZ_ROUND_SECONDS=S                 CPU seconds a round aims at (default 60)
#   FUZZ_HANG_SECONDS=S                  a round running longer (wall clock) is a hang
#                                        (default 900; raise it when running niced)
#   FUZZ_TEST_THREADS=N                  libtest threads per round (default: libtest's)
#
# A property that fails is shrunk by proptest, which prints the minimal failing input; turn
# it into a named `regression_*` test next to the property (every test run, CI too, then
# replays it). An abort or a hang prints nothing of the kind: rerun the printed command.
set -euo pipefail
cd "$(dirname "$0")/.."

minutes="${1:-30}"
budget=$(awk "BEGIN { printf \"%d\", $minutes * 60 }")
first_cases="${FUZZ_CASES:-2000}"
round_seconds="${FUZZ_ROUND_SECONDS:-60}"
hang_seconds="${FUZZ_HANG_SECONDS:-900}"
threads=()
if [ -n "${FUZZ_TEST_THREADS:-}" ]; then threads=(--test-threads "$FUZZ_TEST_THREADS"); fi

# Every fuzz target: "crate-dir target-name".
targets=()
for file in crates/*/tests/fuzz_*.rs; do
  [ -e "$file" ] || continue
  name=$(basename "$file" .rs)
  if [ -n "${FUZZ_TARGETS:-}" ] && ! [[ " $FUZZ_TARGETS " == *" $name "* ]]; then continue; fi
  targets+=("$(dirname "$(dirname "$file")") $name")
done
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzz_* test targets found" >&2
  exit 1
fi

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores"
echo "fuzzing ${#targets[@]} targets for $minutes min each"

# The test binary of `--test name` in crate `pkg`, built in release mode.
build() {
  local pkg=$1 name=$2
  cargo test --release -p "$pkg" --test "$name" --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4
}

# A random u64 (proptest's PROPTEST_RNG_SEED) from the kernel's random source.
fresh_seed() {
  od -An -N8 -tu8 /dev/urandom | tr -d ' '
}

summary=()
for t in "${targets[@]}"; do
  read -r dir name <<<"$t"
  pkg=$(basename "$dir")
  exe=$(build "$pkg" "$name")
  if [ -z "$exe" ] || [ ! -x "$exe" ]; then
    echo "fuzz.sh: cannot build $pkg --test $name:" >&2
    cargo test --release -p "$pkg" --test "$name" --no-run >&2 || true
    exit 1
  fi
  cases=$first_cases
  cpu=0
  rounds=0
  inputs=0
  timing=$(mktemp)
  while awk -v u="$cpu" -v b="$budget" 'BEGIN { exit !(u < b) }'; do
    seed=$(fresh_seed)
    rounds=$((rounds + 1))
    log=$(mktemp)
    t0=$(date +%s.%N)
    set +e
    # bash's `time` reports the CPU time of the subshell and what it waited for (the test).
    TIMEFORMAT='%3U %3S'
    # (The test's own output is redirected inside the subshell: a redirection of the timed
    # command would take the timing with it.)
    { time (cd "$dir" && PROPTEST_RNG_SEED=$seed PROPTEST_CASES=$cases \
      timeout --signal=KILL "$hang_seconds" "$exe" "${threads[@]}" >"$log" 2>&1); } 2>"$timing"
    rc=$?
    set -e
    took=$(awk "BEGIN { print $(date +%s.%N) - $t0 }")
    used=$(awk '{ print $1 + $2 }' "$timing")
    if [ $rc -ne 0 ]; then
      tail -n 40 "$log"
      echo
      if [ $rc -eq 137 ]; then
        echo "FAILED: $pkg/$name round $rounds killed after ${took}s (a hang past ${hang_seconds}s, or an abort)"
      else
        echo "FAILED: $pkg/$name round $rounds (exit $rc)"
      fi
      echo "reproduce: (cd $dir && PROPTEST_RNG_SEED=$seed PROPTEST_CASES=$cases cargo test --release -p $pkg --test $name)"
      echo "the minimal failing input is above: add it to $dir/tests/$name.rs as a regression_* test"
      rm -f "$log" "$timing"
      exit 1
    fi
    props=$(grep -o 'test result: ok. [0-9]* passed' "$log" | awk '{ print $4 }')
    rm -f "$log"
    inputs=$((inputs + cases * ${props:-0}))
    cpu=$(awk -v a="$cpu" -v b="$used" 'BEGIN { print a + b }')
    printf '  %s round %d: %d properties x %d cases, %.1f s CPU in %.1f s (seed %s)\n' \
      "$name" "$rounds" "${props:-0}" "$cases" "$used" "$took" "$seed"
    # Aim the next round at FUZZ_ROUND_SECONDS of CPU, within what the budget has left; grow
    # at most 4 times a round.
    cases=$(awk -v c="$cases" -v t="$used" -v u="$cpu" -v b="$budget" -v r="$round_seconds" \
      'BEGIN { a = b - u; if (a > r) a = r; n = int(c * a / (t > 0.1 ? t : 0.1));
               if (n > 4 * c) n = 4 * c; if (n < 50) n = 50; if (n > 10000000) n = 10000000;
               print n }')
  done
  rm -f "$timing"
  elapsed=$(awk -v u="$cpu" 'BEGIN { printf "%d", u }')
  summary+=("$pkg/$name: $rounds rounds, $inputs inputs, ${elapsed} s CPU")
done

echo
echo "no failure:"
printf '  %s\n' "${summary[@]}"
