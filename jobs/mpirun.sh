#!/usr/bin/env bash
# A diffpool experiment on one workstation with Open MPI's mpirun: one rank per core (CPU) or per
# GPU, the ranks share the jobs as a task farm.
#
#   jobs/mpirun.sh CONFIG [diffpool run options...]
#
# Environment:
#   DIFFPOOL_RANKS     ranks (default: the number of cores, `nproc`; on a GPU machine set it to
#                      the number of GPUs: rank r uses GPU r mod visible GPUs, and
#                      CUDA_VISIBLE_DEVICES, if set, is respected)
#   DIFFPOOL_THREADS   BLAS threads per rank (default 1): OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and
#                      --set backend.cpu_threads; ranks are bound to DIFFPOOL_THREADS cores each
#   DIFFPOOL_BIND      mpirun --bind-to (default core; "none" when ranks x threads exceed the cores)
#   DIFFPOOL_BIN       the diffpool executable (default: `diffpool` on PATH, else build/diffpool)
#   DIFFPOOL_OUTPUT    output folder (--set output.dir=...; default: the experiment's output.dir)
#   DIFFPOOL_MPIRUN    the launcher (default mpirun); DIFFPOOL_MPIRUN_ARGS more mpirun options
#                      (e.g. --oversubscribe, or --allow-run-as-root)
#   DIFFPOOL_RERUN     times to start the run again when it stopped with 75 although this script
#                      was not signalled (a rank was sent SIGTERM/SIGUSR1 from elsewhere); default 0
#   DIFFPOOL_MPS       1: more ranks than GPUs share them through CUDA MPS (docs/PERFORMANCE.md,
#                      "Measured on an H200": 16 ranks on one H200 ran 2.1x to 2.7x faster with it).
#                      The script starts the MPS control daemon (nvidia-cuda-mps-control -d) with
#                      its pipes and logs in DIFFPOOL_MPS_DIR (default: a new temporary folder),
#                      hands CUDA_MPS_PIPE_DIRECTORY to the ranks, and quits the daemon at the end
# Stopping: Ctrl-C, SIGTERM or SIGUSR1 to this script is forwarded to the ranks as SIGUSR1: they
#   checkpoint the running jobs and the script exits with 75. Run the same command again to resume.
# Exit codes: 0 all jobs done; 3 some jobs failed (rerun to retry them); 75 stopped after
#   checkpointing; 2 invalid input; 1 internal error.
set -euo pipefail
jobs_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=jobs/slurm/common.sh
source "$jobs_dir/slurm/common.sh"

if (($# < 1)); then
  echo "usage: $0 CONFIG [diffpool run options...]" >&2
  exit 2
fi
config="$1"
shift
diffpool_locate_binary "$jobs_dir/slurm"
threads="${DIFFPOOL_THREADS:-1}"
ranks="${DIFFPOOL_RANKS:-$(nproc)}"
SLURM_CPUS_PER_TASK="$threads" diffpool_setup_run "$@"

args=(-np "$ranks" -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS)
if [[ "${DIFFPOOL_BIND:-core}" != none ]]; then
  args+=(--map-by "slot:PE=$threads" --bind-to "${DIFFPOOL_BIND:-core}")
else
  args+=(--bind-to none)
fi
# shellcheck disable=SC2206  # a list of options, split on blanks
args+=(${DIFFPOOL_MPIRUN_ARGS:-})

if [[ "${DIFFPOOL_MPS:-0}" == 1 ]]; then
  if ! command -v nvidia-cuda-mps-control >/dev/null 2>&1; then
    diffpool_log "DIFFPOOL_MPS=1: nvidia-cuda-mps-control not found (it comes with the NVIDIA driver)"
    exit 2
  fi
  mps_dir="${DIFFPOOL_MPS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/diffpool-mps.XXXXXX")}"
  export CUDA_MPS_PIPE_DIRECTORY="$mps_dir/pipe" CUDA_MPS_LOG_DIRECTORY="$mps_dir/log"
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  if ! nvidia-cuda-mps-control -d; then
    diffpool_log "DIFFPOOL_MPS=1: the MPS control daemon did not start (its log: $CUDA_MPS_LOG_DIRECTORY)"
    exit 1
  fi
  diffpool_log "CUDA MPS control daemon started (pipes in $CUDA_MPS_PIPE_DIRECTORY)"
  trap 'echo quit | nvidia-cuda-mps-control >/dev/null 2>&1 || true' EXIT
  args+=(-x CUDA_MPS_PIPE_DIRECTORY)
fi

# mpirun runs in a session of its own, so Ctrl-C reaches only this script (which asks the ranks
# to checkpoint); mpirun itself would take SIGINT as an abort.
detach=()
if command -v setsid >/dev/null 2>&1; then detach=(setsid); fi

reruns="${DIFFPOOL_RERUN:-0}"
while true; do
  diffpool_log "$ranks rank(s), $threads thread(s) each, CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-<unset>}"
  diffpool_run_step "${detach[@]}" "${DIFFPOOL_MPIRUN:-mpirun}" "${args[@]}" "$DIFFPOOL_BIN" run "$config" "${DIFFPOOL_ARGS[@]}"
  if [[ "$DIFFPOOL_STEP_RC" -eq 75 && -z "$diffpool_stop_signal" ]] && ((reruns > 0)); then
    reruns=$((reruns - 1))
    diffpool_log "the ranks stopped (75) without a signal to this script: starting again to resume"
    continue
  fi
  break
done
DIFFPOOL_REQUEUE=0 diffpool_finish "$config"
