#!/usr/bin/env bash
# Submits a diffpool experiment as a job array (jobs/slurm/array.sbatch, one task per outer fold)
# plus a summary job that runs after every task succeeded (--dependency=afterok).
#
#   jobs/slurm/submit-array.sh [sbatch options --] CONFIG [diffpool run options...]
#
# sbatch options before `--` go to the array tasks (e.g. --time=2:00:00 --gres=gpu:1
#   --cpus-per-task=4 --partition=gpu); the summary job gets --ntasks=1 and SUMMARY_SBATCH_ARGS.
# Environment: DIFFPOOL_FOLDS (folds; default: read from `diffpool validate`), DIFFPOOL_MAX_PARALLEL
#   (at most this many tasks at once, --array=...%N), SUMMARY_SBATCH_ARGS, and everything
#   jobs/slurm/array.sbatch reads (DIFFPOOL_BIN, DIFFPOOL_OUTPUT, ...), which sbatch passes on.
# Prints "ARRAY_JOB_ID SUMMARY_JOB_ID".
set -euo pipefail
jobs_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=jobs/slurm/common.sh
source "$jobs_dir/common.sh"

sbatch_args=()
for arg in "$@"; do
  if [[ "$arg" == -- ]]; then
    while [[ "$1" != -- ]]; do sbatch_args+=("$1"); shift; done
    shift
    break
  fi
done
if (($# < 1)); then
  echo "usage: $0 [sbatch options --] CONFIG [diffpool run options...]" >&2
  exit 2
fi
config="$1"
shift
diffpool_locate_binary "$jobs_dir"
extra=("$@")
if [[ -n "${DIFFPOOL_OUTPUT:-}" ]]; then extra+=(--set "output.dir=$DIFFPOOL_OUTPUT"); fi
folds="${DIFFPOOL_FOLDS:-}"
if [[ -z "$folds" ]]; then
  folds="$("$DIFFPOOL_BIN" validate "$config" "${extra[@]}" | sed -n 's/.*protocol, \([0-9]*\) folds.*/\1/p')"
fi
if [[ -z "$folds" ]]; then
  echo "error: cannot read the number of folds of $config; set DIFFPOOL_FOLDS" >&2
  exit 2
fi
range="0-$((folds - 1))${DIFFPOOL_MAX_PARALLEL:+%$DIFFPOOL_MAX_PARALLEL}"
array_id="$(sbatch --parsable --array="$range" "${sbatch_args[@]}" "$jobs_dir/array.sbatch" "$config" "$@")"
array_id="${array_id%%;*}"
# shellcheck disable=SC2206  # a list of options, split on blanks
summary_args=(${SUMMARY_SBATCH_ARGS:-})
summary_id="$(sbatch --parsable --dependency="afterok:$array_id" --ntasks=1 --job-name=diffpool-summary \
  --output="diffpool-${array_id}_summary.out" "${summary_args[@]}" "$jobs_dir/array.sbatch" "$config" "$@" --summary-only)"
echo "${array_id} ${summary_id%%;*}"
