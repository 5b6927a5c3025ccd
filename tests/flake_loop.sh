#!/usr/bin/env bash
# Runs the whole leak-checking suite many times in a row, tests in parallel,
# while a second process keeps the CPUs busy, and counts failed rounds. Every
# leaking fixture in the suite must be caught and every clean test must pass,
# so one failed round is either a missed leak or a false alarm.
#
#   bash tests/flake_loop.sh [ROUNDS]        (default 200)
#
# Not part of CI (it takes long). Set RUSTFLAGS="--cfg tokio_unstable" to loop
# that build instead. Each round's failures are kept in target/flake-loop/.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-200}"
out=target/flake-loop
mkdir -p "$out"
# Its own build, so that work in the tree during a long loop does not
# replace the binaries under it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$out/build}"

# The suite: every test binary of the runtime, the tests crate and the
# examples (the tonic server test included), but trybuild's compile-only UI
# test; the runtime's unit tests run without the million-scope churn test (a
# measurement of the registry's slots, not a leak check; it runs in CI).
binaries=$(cargo test -p leakfree-runtime -p leakfree-tests -p leakfree-examples \
  --features leakfree-examples/tonic --no-run --message-format=json 2>/dev/null \
  | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        if not m["executable"].split("/")[-1].startswith("ui-"):
            print(m["executable"])
')
echo "suite: $(echo "$binaries" | wc -l) test binaries"

# The load: one busy process per core, for as long as the loop runs.
load_pids=()
for _ in $(seq "$(nproc)"); do
  ( while :; do :; done ) &
  load_pids+=($!)
done
trap 'kill "${load_pids[@]}" 2>/dev/null || true' EXIT

passed=0
failed=0
for round in $(seq "$rounds"); do
  ok=1
  for binary in $binaries; do
    # Examples' tests run their binaries and read sources relative to the
    # package; run each binary from its package directory as cargo would.
    case "$binary" in
      */leakfree_runtime-*|*/exit_protocol-*|*/task_states-*|*/loom_*) dir=leakfree-runtime ;;
      */leaklab-*|*/eventbus-*|*/service-*|*/tower_layer-*|*/tonic_layer-*|*/load-*) dir=examples ;;
      *) dir=tests ;;
    esac
    if ! (cd "$dir" && "$binary" --test-threads=4 --skip a_million_scopes_leave_the_registry_flat \
      >"../$out/last.log" 2>&1); then
      ok=0
      cp "$out/last.log" "$out/round-$round-$(basename "$binary").log"
    fi
  done
  if [ "$ok" = 1 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  printf 'round %d: %d passed, %d failed\n' "$round" "$passed" "$failed" | tee -a "$out/progress.log"
done
echo "flake loop: $passed passed, $failed failed"
[ "$failed" = 0 ]
