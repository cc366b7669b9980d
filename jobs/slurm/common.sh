# shellcheck shell=bash
# Shared by the SLURM job scripts in this folder (sourced, not run). Parameters, all optional, as
# environment variables (sbatch passes the submitting shell's environment to the job):
#   DIFFPOOL_BIN       the diffpool executable (default: `diffpool` on PATH, else build/diffpool
#                      of this checkout)
#   DIFFPOOL_OUTPUT    output folder; adds `--set output.dir=$DIFFPOOL_OUTPUT` (default: the
#                      experiment file's output.dir, relative to the submit folder)
#   DIFFPOOL_REQUEUE   1 (default): requeue the job when the run stopped after a signal listed in
#                      DIFFPOOL_REQUEUE_ON; 0: just exit 75
#   DIFFPOOL_REQUEUE_ON  signals after which the job requeues itself (default "USR1"; add TERM for
#                      clusters that preempt with SIGTERM, e.g. "USR1 TERM"; a plain `scancel`
#                      also sends TERM, which is why TERM is not in the default)
#   SLURM_CPUS_PER_TASK  (set by sbatch --cpus-per-task) BLAS threads per rank; default 1
#
# What the functions here do:
#   * BLAS threads: OPENBLAS_NUM_THREADS=OMP_NUM_THREADS=cores per task, and
#     `--set backend.cpu_threads=` the same (backend settings are not part of the experiment id, so
#     a requeued or resubmitted run with other resources still resumes).
#   * GPUs: nothing to do. Every rank uses device (node-local rank mod visible devices); SLURM's
#     CUDA_VISIBLE_DEVICES (--gres/--gpus-per-task) is respected and never changed.
#   * Preemption: the step runs in the background; SIGUSR1 or SIGTERM received by the batch shell
#     (`#SBATCH --signal=B:USR1@120`, `scancel --signal=USR1 --batch`, preemption) is forwarded to
#     the step as SIGUSR1 (srun and mpirun both pass SIGUSR1 on to every rank; mpirun would turn
#     SIGTERM into a kill). The ranks checkpoint and exit with 75; the script then runs
#     `scontrol requeue $SLURM_JOB_ID` (needs `#SBATCH --requeue`), and the requeued job runs the
#     same script with the same arguments, so it resumes from the checkpoints.

diffpool_log() {
  printf '[%s] %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*"
}

# Sets DIFFPOOL_BIN to the executable, or exits with 2.
diffpool_locate_binary() {
  local jobs_dir="$1"
  if [[ -z "${DIFFPOOL_BIN:-}" ]]; then
    if command -v diffpool >/dev/null 2>&1; then
      DIFFPOOL_BIN="$(command -v diffpool)"
    else
      DIFFPOOL_BIN="$(cd "$jobs_dir/../.." && pwd)/build/diffpool"
    fi
  fi
  if [[ ! -x "$DIFFPOOL_BIN" ]]; then
    echo "error: diffpool executable '$DIFFPOOL_BIN' not found; set DIFFPOOL_BIN" >&2
    exit 2
  fi
}

# Exports the thread settings and sets DIFFPOOL_ARGS: the `diffpool run` arguments after the
# experiment file (output folder and thread overrides, then the script's own extra arguments).
diffpool_setup_run() {
  local threads="${SLURM_CPUS_PER_TASK:-1}"
  export OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads"
  DIFFPOOL_ARGS=(--set "backend.cpu_threads=$threads")
  if [[ -n "${DIFFPOOL_OUTPUT:-}" ]]; then
    DIFFPOOL_ARGS+=(--set "output.dir=$DIFFPOOL_OUTPUT")
  fi
  DIFFPOOL_ARGS+=("$@")
}

diffpool_print_header() {
  diffpool_log "diffpool job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array task $SLURM_ARRAY_TASK_ID)}" \
    "restart ${SLURM_RESTART_COUNT:-0}: ${SLURM_NTASKS:-1} rank(s) on ${SLURM_JOB_NODELIST:-$(hostname)}," \
    "${SLURM_CPUS_PER_TASK:-1} core(s) per rank, CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-<unset>}"
}

diffpool_stop_signal=""
diffpool_step_pid=""

diffpool_forward() {
  local sig="$1"
  if [[ -z "$diffpool_stop_signal" ]]; then diffpool_stop_signal="$sig"; fi
  if [[ -n "$diffpool_step_pid" ]] && kill -0 "$diffpool_step_pid" 2>/dev/null; then
    diffpool_log "received SIG$sig: asking the ranks to checkpoint and stop (SIGUSR1 to the step)"
    kill -USR1 "$diffpool_step_pid" 2>/dev/null || true
  else
    diffpool_log "received SIG$sig"
  fi
}

# From the moment this file is sourced, a stop signal is recorded (and forwarded once a step runs)
# instead of killing the batch shell.
trap 'diffpool_forward USR1' USR1
trap 'diffpool_forward TERM' TERM
trap 'diffpool_forward INT' INT

# Runs the step (a command line) in the background, forwards stop signals to it, waits for it and
# returns its exit code in DIFFPOOL_STEP_RC.
diffpool_run_step() {
  if [[ -n "$diffpool_stop_signal" ]]; then  # signalled before the step started
    diffpool_log "received SIG$diffpool_stop_signal before the step started: not starting it"
    DIFFPOOL_STEP_RC=75
    return
  fi
  diffpool_log "running: $*"
  "$@" &
  diffpool_step_pid=$!
  local rc
  while true; do
    rc=0
    wait "$diffpool_step_pid" || rc=$?
    # wait returns early (status > 128) when a trapped signal arrives, while the step still runs.
    if kill -0 "$diffpool_step_pid" 2>/dev/null; then
      continue
    fi
    if ((rc > 128)); then  # the step may have ended right after the signal: bash kept its status
      rc=0
      wait "$diffpool_step_pid" 2>/dev/null || rc=$?
    fi
    break
  done
  diffpool_step_pid=""
  DIFFPOOL_STEP_RC=$rc
}

# srun (Slurm 22.05) exits with 0 even when it could not launch the tasks. After an exit code 0,
# `diffpool plan` must list every job of the plan as done; otherwise DIFFPOOL_STEP_RC becomes 1.
diffpool_verify_done() {
  local config="$1" prev="" arg listing open
  local sets=()
  for arg in "${DIFFPOOL_ARGS[@]}"; do
    if [[ "$prev" == --set ]]; then sets+=(--set "$arg"); fi
    if [[ "$arg" == --set=* ]]; then sets+=("$arg"); fi
    prev="$arg"
  done
  if ! listing="$("$DIFFPOOL_BIN" plan "$config" "${sets[@]}" 2>&1)"; then
    diffpool_log "warning: \`diffpool plan\` failed, cannot check that every job is done"
    return 0
  fi
  # Job rows: index, phase, point, fold, repeat, cost, work, id, status (last; "done" when done).
  open="$(awk '$1 ~ /^[0-9]+$/ && NF >= 8 && $NF != "done"' <<<"$listing" | wc -l)"
  if ((open > 0)); then
    diffpool_log "error: the step exited with 0, but $open job(s) of the plan are not done (did the launch fail?)"
    DIFFPOOL_STEP_RC=1
  fi
}

# Ends the job after the step: requeues it when the ranks stopped (75) after a requeue signal;
# otherwise exits with the step's code (0 done, 3 some jobs failed, 74 no room for results, 2 input
# error, 1 internal).
# With the experiment file as argument, an exit code 0 is checked with diffpool_verify_done.
diffpool_finish() {
  diffpool_log "step exited with $DIFFPOOL_STEP_RC"
  if [[ "$DIFFPOOL_STEP_RC" -eq 0 && $# -gt 0 ]]; then
    diffpool_verify_done "$1"
  fi
  local rc="$DIFFPOOL_STEP_RC"
  if [[ "$rc" -eq 74 ]]; then
    diffpool_log "the output's file system is full or over its quota: free space, then resubmit the same command to resume"
  fi
  if [[ "$rc" -eq 75 ]]; then
    local on=" ${DIFFPOOL_REQUEUE_ON:-USR1} "
    if [[ "${DIFFPOOL_REQUEUE:-1}" == 1 && -n "${SLURM_JOB_ID:-}" && -n "$diffpool_stop_signal" &&
          "$on" == *" $diffpool_stop_signal "* ]]; then
      diffpool_log "checkpointed after SIG$diffpool_stop_signal; requeueing job $SLURM_JOB_ID to resume"
      # Slurm ends this shell (SIGTERM) once the requeue is accepted: nothing is left to forward.
      trap '' TERM USR1 INT
      if scontrol requeue "$SLURM_JOB_ID"; then
        exit 0
      fi
      diffpool_log "scontrol requeue failed: resubmit the same command to resume"
    else
      diffpool_log "stopped after checkpointing; run the same command again to resume"
    fi
  fi
  exit "$rc"
}
