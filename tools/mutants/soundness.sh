#!/usr/bin/env bash
# Mutation run for the soundness tests (docs/soundness.md): disables, one at a time, each check
# a verifier makes on a proof's values (one final check exempted in `final_check`, or an input check skipped), and confirms that the soundness tests then fail. A check
# whose removal no test notices is a check no test covers.
#
# Works on a scratch copy of the checkout (its own target folder), so the working tree and its
# build are never touched. Takes about a minute per mutant on 2 cores after the first build.
#   tools/mutants/soundness.sh [SCRATCH_DIR]
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
scratch="${1:-${TMPDIR:-/tmp}/verinfer-mutants}"
mkdir -p "$scratch"
rm -rf "$scratch/tree"
mkdir -p "$scratch/tree"
tar -C "$repo" --exclude=./target --exclude=./.git -cf - . | tar -C "$scratch/tree" -xf -
# Cargo decides freshness by modification time: a copied or restored file keeps an old one and
# would not be rebuilt over a previous run's mutant, so every source gets a new one.
find "$scratch/tree" -name '*.rs' -exec touch {} +
export CARGO_TARGET_DIR="$scratch/target"
cd "$scratch/tree"

# file | text of one check | the same check disabled
mutants=$(cat <<'LIST'
verifier/src/layers/mod.rs|    if ended_on != relation {|    if ended_on != relation && what != "activation final evaluation" {
verifier/src/layers/mod.rs|    if ended_on != relation {|    if ended_on != relation && what != "sum-pool final evaluation" {
verifier/src/layers/mod.rs|    if ended_on != relation {|    if ended_on != relation && what != "dense final evaluation" {
verifier/src/layers/mod.rs|    if ended_on != relation {|    if ended_on != relation && what != "convolution kernel evaluation" {
verifier/src/layers/mod.rs|    if ended_on != relation {|    if ended_on != relation && what != "convolution window evaluation" {
verifier/src/layers/mod.rs|    if ended_on != relation {|    if ended_on != relation && what != "gate-layer merge evaluation" {
verifier/src/layers/mod.rs|    if ended_on != relation {|    if ended_on != relation && what != "checkpoint requantized evaluation" {
verifier/src/layers/mod.rs|    if ended_on != relation {|    if ended_on != relation && what != "add of its operands" {
verifier/src/layers/mod.rs|    if ended_on != relation {|    if ended_on != relation && what != "fork merged evaluation" {
verifier/src/layers/mod.rs|    if ended_on != relation {|    if ended_on != relation && what != "polynomial final evaluation" {
verifier/src/layers/mod.rs|    if ended_on != relation {|    if ended_on != relation && what != "product of its operands" {
verifier/src/gkr.rs|if phase1.value != v_u * lin {|if false && phase1.value != v_u * lin {
verifier/src/gkr.rs|if phase2.value != v_u * terms.mul_at(&eq_z, &eq_u, &eq_v) * v_v {|if false && phase2.value != v_u * terms.mul_at(&eq_z, &eq_u, &eq_v) * v_v {
verifier/src/inference.rs|if mle::evaluate(&table, &claim.point) != claim.value {|if false && mle::evaluate(&table, &claim.point) != claim.value {
verifier/src/gkr.rs|if at_input != claim {|if false && at_input != claim {
LIST
)
tests=(--no-fail-fast --test structured_soundness --test gkr_soundness --test residual --test relu)
cargo test -q -p verinfer-prover "${tests[@]}" >/dev/null 2>&1 || {
  echo "the soundness tests fail without any mutation" >&2
  exit 1
}
survived=0
while IFS='|' read -r file check disabled; do
  cp "$file" "$file.orig"
  CHECK="$check" DISABLED="$disabled" python3 - "$file" <<'PY'
import os, sys
path, needle = sys.argv[1], os.environ["CHECK"]
disabled = os.environ["DISABLED"]
src = open(path).read()
n = src.count(needle)
if n != 1:
    sys.exit(f"{path}: '{needle}' found {n} times")
open(path, "w").write(src.replace(needle, disabled))
PY
  if cargo test -q -p verinfer-prover "${tests[@]}" >"$scratch/last.log" 2>&1; then
    echo "SURVIVED  $file: $disabled"
    survived=$((survived + 1))
  elif ! grep -q "test result: FAILED" "$scratch/last.log"; then
    # A build error is not a caught mutant.
    echo "NO RUN    $file: $check (see $scratch/last.log)"
    survived=$((survived + 1))
  else
    failing=$(grep -E '^    [a-z_0-9]+$' "$scratch/last.log" | tr -d ' ' | paste -sd, -)
    echo "caught    $file: $disabled  [$failing]"
  fi
  mv "$file.orig" "$file"
  touch "$file"
done <<<"$mutants"
echo "$survived mutant(s) survived"
[ "$survived" -eq 0 ]
