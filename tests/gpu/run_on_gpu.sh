#!/usr/bin/env bash
# The GPU checks, run on the GPU machine inside the unpacked archive of tests/gpu/bundle.sh:
#
#   tar -xJf diffpool-gpu.tar.xz && diffpool-gpu/run_on_gpu.sh [--report DIR] [--no-gpu] [--budget S]
#
# Steps (each under its own `timeout`; a failed step is recorded and the next one runs):
#   environment    nvidia-smi -L; ldd of every bundled program: nothing "not found"
#   cuda tests     test_cuda_module (the programs map cudart and cuBLAS only once a CUDA device is
#                  asked for, loading bin/libdiffpool_cuda.so), test_backend_parity, test_cuda_ops
#                  (a test that skips for want of a device fails here); the product tests again
#                  with DIFFPOOL_CUDA_CUBLAS_GROUPED=1 (large groups as one grouped cuBLAS call)
#   benchmarks     bench_epoch on ENZYMES (configs/bench_enzymes.yaml; each step one CUDA graph, the
#                  default, and again with DIFFPOOL_CUDA_GRAPHS=0, every launch issued as it comes,
#                  and with DIFFPOOL_CUDA_FULL_CHUNKS=1, the grouped kernels' largest chunks;
#                  training 30 epochs both ways: the same epochs) and on D&D's paper 2-level
#                  model (configs/bench_dd.yaml), the latter also with model.cluster_rule=per_graph
#                  (both ways too),
#                  all with backend.kind=cuda and a few epochs; the two D&D models again with
#                  backend.matmul_precision=tf32 (tensor cores); the paper D&D model in FP32 and TF32
#                  with DIFFPOOL_CUDA_CUBLAS_GROUPED=1; the ENZYMES epoch on one CPU core and with
#                  --profile, its time by backend primitive (each call waited for), as a table in
#                  the report; FP32 against TF32 training of the paper ENZYMES model (fold 0); and
#                  bench_cuda_host, the host's side of the same model's CUDA step (the backend's
#                  sources under the CPU emulation, kernels skipped): with bench-enzymes it splits
#                  the GPU step into the host's own work and the driver's cost per launch
#                  (and the same for the 2-level per-graph model)
#   mpi run        the paper ENZYMES experiment (10 jobs) under the bundle's mpirun, RANKS ranks on
#                  the one GPU, few epochs; SIGKILL to the whole job once a job has finished and a
#                  running job with a quarter of its epochs left has a checkpoint; the same command
#                  again; then: exit 0, 10 job files, a summary, and a job log that says "resumed
#                  from the checkpoint"
#   throughput     many jobs per GPU: the paper ENZYMES experiment (10 jobs of 1000 epochs) and the
#                  quickstart (20 jobs of at most 300 epochs, early stopping), as configured, under
#                  mpirun with 16 ranks sharing the GPU through CUDA MPS (where the machine has it),
#                  the same with every launch issued as it comes, and 16 ranks on the CPU cores
#                  (GPU_THROUGHPUT_RUNS picks others: 1, 4, 8 ranks...): wall time and jobs per
#                  hour of each, as a table (with what time the budget leaves; rows print as they
#                  finish)
# The report, report.md (every command, its exit code, wall time and the tail of its output), and
# the full logs go to --report DIR (default: $OUT if set, else ./gpu-report). Exit status: the
# number of failed steps (0: all passed).
#
# --no-gpu: the same steps on the CPU, to check a bundle on a machine without a GPU: no
# nvidia-smi, the cuda tests must skip ("no CUDA device") and pass, the benchmarks and the MPI run
# use backend.kind=cpu with fewer epochs.
#
# Environment: GPU_MPI_RANKS (default 4), GPU_MPI_EPOCHS (default 60; 20 with --no-gpu),
# GPU_BENCH_EPOCHS (timed epochs of each benchmark, default 5; 1 with --no-gpu),
# GPU_THROUGHPUT_EPOCHS (default "config", the experiments' own epochs; a number sets every job's;
# 3 with --no-gpu, where the throughput step runs 1 and 2 CPU ranks only), GPU_THROUGHPUT_RUNS (the
# backend:ranks runs, default "cuda-mps:16 cpu:16 cuda-mps-launches:16"; cuda-mps: the CUDA backend
# with the ranks sharing the GPU through CUDA MPS, not run where nvidia-cuda-mps-control is missing
# or its daemon does not start; a -launches suffix: every launch issued as it comes,
# DIFFPOOL_CUDA_GRAPHS=0, instead of each step one CUDA graph).
set -uo pipefail
bundle="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
report_dir="${OUT:-$PWD/gpu-report}"
budget=540
gpu=1
call=()
while (( $# )); do
  case "$1" in
    --call) shift; call=("$@"); break ;;  # internal: run one of the functions below under `timeout`
    --report) report_dir="$2"; shift 2 ;;
    --budget) budget="$2"; shift 2 ;;
    --no-gpu) gpu=0; shift ;;
    *) echo "run_on_gpu.sh: unknown argument '$1' (allowed: --report DIR, --budget SECONDS, --no-gpu)" >&2; exit 2 ;;
  esac
done
ranks="${GPU_MPI_RANKS:-4}"
if (( gpu )); then backend=cuda; mpi_epochs="${GPU_MPI_EPOCHS:-60}"; bench_epochs="${GPU_BENCH_EPOCHS:-5}"
  throughput_epochs="${GPU_THROUGHPUT_EPOCHS:-config}"; throughput_runs="${GPU_THROUGHPUT_RUNS:-cuda-mps:16 cpu:16 cuda-mps-launches:16}"
else backend=cpu; mpi_epochs="${GPU_MPI_EPOCHS:-20}"; bench_epochs="${GPU_BENCH_EPOCHS:-1}"
  throughput_epochs="${GPU_THROUGHPUT_EPOCHS:-3}"; throughput_runs="${GPU_THROUGHPUT_RUNS:-cpu:1 cpu:2}"; fi

# Everything resolves from the bundle: its libraries first, then (when cuBLAS was not bundled) the
# GPU machine's CUDA toolkit, then whatever the machine had set (where the driver's libcuda may
# live in a container). Open MPI finds its components and help texts under OPAL_PREFIX.
cuda_libs=""
if ! compgen -G "$bundle/lib/libcublas.so*" > /dev/null; then
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [[ -d "$d" ]] && cuda_libs+=":$d"; done
fi
export LD_LIBRARY_PATH="$bundle/lib:$bundle/ompi/lib/x86_64-linux-gnu/openmpi/lib$cuda_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OPAL_PREFIX="$bundle/ompi"
export PMIX_MCA_mca_base_component_path="$bundle/pmix"
export PATH="$bundle/ompi/bin:$bundle/bin:$PATH"
export DIFFPOOL_DATA="$bundle/data"
export HDF5_USE_FILE_LOCKING=FALSE
# One node, shared memory only: no UCX/InfiniBand probing; no CMA (containers forbid ptrace).
export OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# The work folder (the MPI run's output); --call gets the caller's through GPU_CHECK_WORK.
jobs_expected=10  # the paper ENZYMES experiment: 10 folds, one sweep point
use_work() {
  work="$1"
  out="$work/paper-enzymes"
  mpi_command=(mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$ranks"
             "$bundle/bin/diffpool" run "$bundle/configs/paper/enzymes-diffpool.yaml"
             --set output.dir="$out" --set backend.kind="$backend" --set training.epochs="$mpi_epochs"
             --set output.checkpoint_every=5 --set output.progress=plain)
}

# --- the checks that are shell functions (run through --call, so `timeout` can bound them) ------
check_ldd() {
  local missing=0 f
  for f in "$bundle"/bin/* "$bundle"/ompi/bin/orterun "$bundle"/ompi/bin/orted; do
    echo "### $f"
    ldd "$f" > "$work/ldd.txt" 2>&1
    cat "$work/ldd.txt"
    grep -q 'not found' "$work/ldd.txt" && { echo "MISSING in $f"; missing=1; }
  done
  # Where the libraries come from, when not from the bundle (glibc and the driver should be all).
  echo "### resolved outside the bundle"
  for f in "$bundle"/bin/* "$bundle"/ompi/bin/orterun "$bundle"/ompi/bin/orted; do ldd "$f"; done |
    awk -v b="$bundle/" '$2 == "=>" && $3 ~ /^\// && index($3, b) != 1 {print "outside: " $1 " " $3}' | sort -u
  return $missing
}
count_jobs() { find "$out/jobs" -name '*.h5' 2>/dev/null | wc -l; }
# A job that has a checkpoint, has not finished and has at least a quarter of its epochs left (its
# log's last "epoch E/T" line), so that it is still running when the kill lands.
unfinished_checkpoint() {
  local c id progress
  for c in "$out"/checkpoints/*.h5; do
    id="$(basename "$c" .h5)"
    [[ -e "$c" && ! -e "$out/jobs/$id.h5" ]] || continue
    progress="$(grep -o '^epoch [0-9]*/[0-9]*' "$out/logs/$id.log" 2>/dev/null | tail -n 1)"
    [[ "$progress" =~ ^epoch\ ([0-9]+)/([0-9]+)$ ]] || continue
    (( 4 * (BASH_REMATCH[2] - BASH_REMATCH[1]) >= BASH_REMATCH[2] )) && { echo "$id at $progress"; return 0; }
  done
  return 1
}
# Starts the run in a session of its own, waits until a job has finished and a running job has a
# checkpoint (unfinished_checkpoint), then SIGKILLs the whole session (mpirun and its ranks).
run_and_kill() {
  local deadline=$((SECONDS + $1)) pid
  setsid "${mpi_command[@]}" &
  pid=$!
  while (( SECONDS < deadline )) && kill -0 "$pid" 2>/dev/null; do
    if (( $(count_jobs) >= 1 )) && unfinished_checkpoint > /dev/null; then break; fi
    sleep 0.5
  done
  if ! kill -0 "$pid" 2>/dev/null; then
    wait "$pid"; echo "the run ended (exit $?) before it could be killed: raise GPU_MPI_EPOCHS"; return 1
  fi
  echo "SIGKILL to the run's session $pid after $(count_jobs) of $jobs_expected jobs; checkpointed and running: job $(unfinished_checkpoint)"
  kill -KILL -- "-$pid"
  wait "$pid" 2>/dev/null
  sleep 2
  echo "jobs after the kill: $(count_jobs)"
}
# Jobs per hour of whole experiments run from empty folders, one row per (experiment, backend,
# ranks) of $throughput_runs; fails when a run exits non-zero or leaves fewer job files than the
# experiment has jobs.
# CUDA MPS (Multi-Process Service) for the cuda-mps runs: its control daemon with its pipes and
# logs in the work folder; the ranks find it through CUDA_MPS_PIPE_DIRECTORY. mps_stop appends the
# server list (did the ranks use MPS?) and the daemon's log to the run's log, then quits it.
mps_why=""
mps_start() {
  command -v nvidia-cuda-mps-control > /dev/null || { mps_why="no nvidia-cuda-mps-control on this machine"; return 1; }
  export CUDA_MPS_PIPE_DIRECTORY="$work/mps-pipe" CUDA_MPS_LOG_DIRECTORY="$work/mps-log"
  mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
  if ! nvidia-cuda-mps-control -d; then
    mps_why="the MPS control daemon did not start"; unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY; return 1
  fi
}
mps_stop() {
  { echo "== MPS servers:"; echo get_server_list | nvidia-cuda-mps-control
    echo "== MPS control log:"; tail -n 20 "$CUDA_MPS_LOG_DIRECTORY/control.log" 2>/dev/null; } >> "$1" 2>&1
  echo quit | nvidia-cuda-mps-control > /dev/null 2>&1
  sleep 1
  unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
}
throughput() {
  local status=0 experiment config jobs spec kind kind_base np dir t0 t1 rc n seconds backend_kind mps graphs epochs
  echo "| experiment | jobs | epochs a job | backend | ranks | seconds | jobs per hour |"
  echo "|---|---|---|---|---|---|---|"
  for experiment in paper-enzymes quickstart; do
    if [[ "$experiment" == paper-enzymes ]]; then config=configs/paper/enzymes-diffpool.yaml; jobs=10
    else config=configs/quickstart.yaml; jobs=20; fi
    for spec in $throughput_runs; do
      kind="${spec%%:*}" np="${spec##*:}" dir="$work/throughput-$experiment-$kind-$np"
      backend_kind="$kind" mps=() graphs=1
      if [[ "$kind" == *-launches ]]; then  # every launch as it comes (DIFFPOOL_CUDA_GRAPHS=0)
        graphs=0 kind_base="${kind%-launches}"
      else kind_base="$kind"; fi
      backend_kind="$kind_base"
      if [[ "$kind_base" == cuda-mps ]]; then  # the ranks' kernels share the GPU through CUDA MPS
        backend_kind=cuda
        if ! mps_start; then
          echo "| $experiment | | $throughput_epochs | $kind | $np | | not run: $mps_why |"
          continue
        fi
        mps=(-x CUDA_MPS_PIPE_DIRECTORY)
      fi
      epochs=(--set training.epochs="$throughput_epochs")
      [[ "$throughput_epochs" == config ]] && epochs=()  # the experiment as configured
      t0=$(date +%s.%N)
      DIFFPOOL_CUDA_GRAPHS=$graphs mpirun --allow-run-as-root --oversubscribe --bind-to none -np "$np" "${mps[@]}" -x DIFFPOOL_CUDA_GRAPHS \
        "$bundle/bin/diffpool" run "$bundle/$config" \
        --set output.dir="$dir" --set backend.kind="$backend_kind" "${epochs[@]}" \
        --set output.progress=plain > "$dir.log" 2>&1
      rc=$?
      t1=$(date +%s.%N)
      [[ "$kind_base" == cuda-mps ]] && mps_stop "$dir.log"
      n=$(find "$dir/jobs" -name '*.h5' 2>/dev/null | wc -l)
      seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
      if (( rc != 0 || n != jobs )); then
        echo "| $experiment | $n of $jobs | $throughput_epochs | $kind | $np | $seconds | failed (exit $rc) |"
        tail -n 15 "$dir.log"
        [[ "$kind_base" == cuda-mps ]] || status=1  # MPS is an experiment: its failure is reported, not the step's
      else
        echo "| $experiment | $jobs | $throughput_epochs | $kind | $np | $seconds | $(awk -v j="$jobs" -v s="$seconds" 'BEGIN { printf "%.0f", 3600 * j / s }') |"
      fi
      rm -rf "$dir"
    done
  done
  return $status
}
# The paper ENZYMES model trained 30 epochs on fold 0 with each step a CUDA graph and with every
# launch issued as it comes: the printed epochs (losses, accuracies) must be the same.
compare_graphs() {
  local with="$work/train-graphs.log" without="$work/train-launches.log"
  local command=("$bundle/bin/diffpool" train "$bundle/configs/paper/enzymes-diffpool.yaml" --fold 0 --epochs 30 --backend cuda)
  DIFFPOOL_CUDA_GRAPHS=1 "${command[@]}" > "$with" 2>&1 || { tail -n 5 "$with"; return 1; }
  DIFFPOOL_CUDA_GRAPHS=0 "${command[@]}" > "$without" 2>&1 || { tail -n 5 "$without"; return 1; }
  # Each epoch line without its closing wall time.
  local a b
  a="$(grep '^epoch' "$with" | sed 's/ *[0-9.]*s$//')"
  b="$(grep '^epoch' "$without" | sed 's/ *[0-9.]*s$//')"
  echo "with graphs:"; grep '^epoch' "$with" | tail -n 3
  echo "without:"; grep '^epoch' "$without" | tail -n 3
  [[ -n "$a" && "$a" == "$b" ]] || { echo "the epochs differ:"; diff <(echo "$a") <(echo "$b") | head -n 20; return 1; }
  echo "30 epochs identical with and without graphs"
}
if (( ${#call[@]} )); then
  use_work "$GPU_CHECK_WORK"
  "${call[@]}"
  exit $?
fi

mkdir -p "$report_dir/logs"
report="$report_dir/report.md"
details="$report_dir/details.md"
use_work "$(mktemp -d "${TMPDIR:-/tmp}/diffpool-gpu.XXXXXX")"
export GPU_CHECK_WORK="$work"
self=("$bundle/run_on_gpu.sh"); (( gpu )) || self+=(--no-gpu)
started=$SECONDS
failed=0
{
  echo "# diffpool GPU check"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%M:%SZ), host $(uname -n), $(nproc) cores, mode: $( ((gpu)) && echo GPU || echo 'no GPU (--no-gpu)'), budget ${budget} s"
  echo
  echo '```'
  head -n 3 "$bundle/MANIFEST" 2>/dev/null
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  echo "OPAL_PREFIX=$OPAL_PREFIX"
  echo '```'
  echo
  echo "| step | exit | seconds | result |"
  echo "|---|---|---|---|"
} > "$report"
: > "$details"

# step NAME TIMEOUT COMMAND...: runs COMMAND under `timeout` (at most the budget left), logs it to
# logs/NAME.log and records it. CHECK, when set, names a function run after a command that exited
# 0, with the log's path; its non-zero status fails the step and its output says why.
CHECK=""
step() {
  local name="$1" limit="$2"; shift 2
  local left=$(( budget - (SECONDS - started) ))
  local log="$report_dir/logs/$name.log"
  if (( left < 5 )); then
    echo "| $name | | | skipped: time budget spent |" >> "$report"
    failed=$((failed + 1)); CHECK=""; return 1
  fi
  (( limit > left )) && limit=$left
  echo "== $name (timeout ${limit} s): $*" >&2
  local t0=$SECONDS
  timeout -k 5 "$limit" "$@" > "$log" 2>&1
  local rc=$? took=$((SECONDS - t0)) result=passed reason=""
  if (( rc == 124 || rc == 137 )); then result="timed out after ${limit} s"
  elif (( rc != 0 )); then result="failed"
  elif [[ -n "$CHECK" ]] && ! reason="$("$CHECK" "$log" 2>&1)"; then result="failed: $reason"
  fi
  [[ "$result" == passed ]] || failed=$((failed + 1))
  echo "| $name | $rc | $took | $result |" >> "$report"
  {
    echo "## $name"
    echo
    echo "\`$*\` (timeout $limit s): exit $rc, $took s, $result"
    echo
    echo '```'
    tail -n 25 "$log"
    echo '```'
    echo
  } >> "$details"
  echo "   exit $rc, $took s, $result" >&2
  CHECK=""
  [[ "$result" == passed ]]
}

# --- environment -------------------------------------------------------------------------------
if (( gpu )); then step nvidia-smi 30 nvidia-smi -L; fi
step ldd 30 "${self[@]}" --call check_ldd
step mpirun-version 30 mpirun --version

# --- cuda tests --------------------------------------------------------------------------------
# Without a device every test skips with "no CUDA device"; that passes only in --no-gpu mode.
no_skip() {
  if grep -q 'no CUDA device' "$1"; then
    (( gpu )) && { echo "tests skipped: no CUDA device"; return 1; }
    return 0
  fi
  (( gpu )) || { echo "a device was used in --no-gpu mode"; return 1; }
  grep -q '\[  PASSED  \]' "$1" || { echo "no PASSED line"; return 1; }
}
step test_cuda_module 30 "$bundle/bin/test_cuda_module"
CHECK=no_skip; step test_backend_parity 150 "$bundle/bin/test_backend_parity"
CHECK=no_skip; step test_cuda_ops 120 "$bundle/bin/test_cuda_ops"
# gemm_grouped's large groups as one cuBLAS grouped batched call (opt-in until timed here): the
# products' parity with it on.
if (( gpu )); then
  CHECK=no_skip; DIFFPOOL_CUDA_CUBLAS_GROUPED=1 step test_backend_parity-cublas-grouped 60 \
    "$bundle/bin/test_backend_parity" --gtest_filter='*Gemm*:*Tf32*'
fi

# --- benchmarks --------------------------------------------------------------------------------
step bench-enzymes 60 "$bundle/bin/bench_epoch" "$bundle/configs/bench_enzymes.yaml" \
  --epochs "$bench_epochs" --warmup 1 --set backend.kind="$backend"
if (( gpu )); then
  # The same epoch with every launch issued as it comes instead of each step captured into a
  # CUDA graph (the default; the "steps" line of each says how its graphs were updated).
  DIFFPOOL_CUDA_GRAPHS=0 step bench-enzymes-launches 60 "$bundle/bin/bench_epoch" "$bundle/configs/bench_enzymes.yaml" \
    --epochs "$bench_epochs" --warmup 1 --sgemm 0 --set backend.kind=cuda
  # The same epoch with every grouped launch passing the largest chunk of descriptors (48 or 64,
  # as before chunks were sized to their groups): what the arguments' bytes cost per launch.
  DIFFPOOL_CUDA_FULL_CHUNKS=1 step bench-enzymes-full-chunks 60 "$bundle/bin/bench_epoch" "$bundle/configs/bench_enzymes.yaml" \
    --epochs "$bench_epochs" --warmup 1 --sgemm 0 --set backend.kind=cuda
  # Training with and without graphs: the same epochs' losses and accuracies.
  step train-graphs-vs-launches 60 "${self[@]}" --call compare_graphs
fi
# The host's side of the same model's CUDA step on this machine's CPU, without the driver
# (kernels skipped under the emulation; runs without a GPU too): bench-enzymes' step time minus
# this, over the step's launches, is what the driver and the device cost per launch.
step bench-cuda-host 60 "$bundle/bin/bench_cuda_host" --data-dir "$bundle/data" --steps 300 --rounds 5
step bench-cuda-host-per-graph 90 "$bundle/bin/bench_cuda_host" --data-dir "$bundle/data" --steps 300 --rounds 5 --levels 2
if (( gpu )); then
  # The same epoch without the grouped kernels: the per-graph products as one cuBLAS call per
  # graph (before gemm_grouped), a linear layer as a broadcast and cuBLAS calls forward and cuBLAS
  # calls and a column sum backward (before gemm_sum_from_row and weight_gradients).
  DIFFPOOL_CUDA_GEMM_GROUPED=0 step bench-enzymes-per-graph-calls 60 "$bundle/bin/bench_epoch" \
    "$bundle/configs/bench_enzymes.yaml" --epochs "$bench_epochs" --warmup 1 --set backend.kind=cuda
  # Where an ENZYMES epoch's GPU time goes, primitive by primitive (--profile waits for the device
  # after every backend call, so each figure is its launch and its run; no Nsight Systems needed).
  step profile-enzymes 60 "$bundle/bin/bench_epoch" "$bundle/configs/bench_enzymes.yaml" \
    --epochs 2 --warmup 1 --sgemm 0 --profile --set backend.kind=cuda
  {
    echo "### profile-enzymes: time per epoch by primitive"; echo; echo '```'
    sed -n '/^profile:/,/^call (shape)/p' "$report_dir/logs/profile-enzymes.log" 2>/dev/null; echo '```'; echo
  } >> "$details"
  # The same ENZYMES epoch on one CPU core of this machine: the GPU's speed-up in one run.
  OPENBLAS_NUM_THREADS=1 step bench-enzymes-cpu 60 "$bundle/bin/bench_epoch" "$bundle/configs/bench_enzymes.yaml" \
    --epochs "$bench_epochs" --warmup 1 --set backend.kind=cpu --set backend.cpu_threads=1
  step bench-dd 120 "$bundle/bin/bench_epoch" "$bundle/configs/bench_dd.yaml" \
    --epochs "$bench_epochs" --warmup 1 --set backend.kind=cuda
  step bench-dd-per-graph 90 "$bundle/bin/bench_epoch" "$bundle/configs/bench_dd.yaml" \
    --epochs "$bench_epochs" --warmup 1 --set backend.kind=cuda --set model.cluster_rule=per_graph
  DIFFPOOL_CUDA_GRAPHS=0 step bench-dd-per-graph-launches 90 "$bundle/bin/bench_epoch" "$bundle/configs/bench_dd.yaml" \
    --epochs "$bench_epochs" --warmup 1 --sgemm 0 --set backend.kind=cuda --set model.cluster_rule=per_graph
  # The same with gemm_grouped's large groups (the per-graph products of 1437 clusters) as one
  # cuBLAS grouped batched call instead of one call per graph (opt-in until timed here).
  DIFFPOOL_CUDA_CUBLAS_GROUPED=1 step bench-dd-cublas-grouped 120 "$bundle/bin/bench_epoch" "$bundle/configs/bench_dd.yaml" \
    --epochs "$bench_epochs" --warmup 1 --sgemm 0 --set backend.kind=cuda
  # The per-graph model's products over the grouped kernel's size (most D&D graphs: about 300 x
  # 70 x 64 and up) are about 140 cuBLAS calls a step launch by launch, 64.5 as grouped calls
  # (counted under the emulation, bench_cuda_host --dataset DD --levels 2).
  DIFFPOOL_CUDA_CUBLAS_GROUPED=1 step bench-dd-per-graph-cublas-grouped 90 "$bundle/bin/bench_epoch" \
    "$bundle/configs/bench_dd.yaml" --epochs "$bench_epochs" --warmup 1 --sgemm 0 --set backend.kind=cuda \
    --set model.cluster_rule=per_graph
  DIFFPOOL_CUDA_CUBLAS_GROUPED=1 step bench-dd-tf32-cublas-grouped 120 "$bundle/bin/bench_epoch" \
    "$bundle/configs/bench_dd.yaml" --epochs "$bench_epochs" --warmup 1 --sgemm 0 --set backend.kind=cuda \
    --set backend.matmul_precision=tf32
  # TF32 tensor cores for the f32 products (backend.matmul_precision), D&D's two models.
  step bench-dd-tf32 120 "$bundle/bin/bench_epoch" "$bundle/configs/bench_dd.yaml" \
    --epochs "$bench_epochs" --warmup 1 --set backend.kind=cuda --set backend.matmul_precision=tf32
  step bench-dd-per-graph-tf32 90 "$bundle/bin/bench_epoch" "$bundle/configs/bench_dd.yaml" \
    --epochs "$bench_epochs" --warmup 1 --set backend.kind=cuda --set model.cluster_rule=per_graph \
    --set backend.matmul_precision=tf32
  # TF32 against FP32 on the GPU: the paper ENZYMES model on fold 0, same seed, 100 epochs each
  # (every epoch's losses and accuracies in the logs, the best epoch in the report).
  for precision in fp32 tf32; do
    step "train-enzymes-$precision" 60 "$bundle/bin/diffpool" train "$bundle/configs/paper/enzymes-diffpool.yaml" \
      --fold 0 --epochs 100 --backend cuda --set backend.matmul_precision=$precision
  done
else
  # D&D's paper model on one CPU core takes minutes per epoch: only check that the bundle reads it.
  step bench-dd-per-graph 120 "$bundle/bin/bench_epoch" "$bundle/configs/bench_dd.yaml" \
    --epochs 1 --warmup 0 --graphs 40 --set backend.kind=cpu --set model.cluster_rule=per_graph
fi

# --- the paper ENZYMES experiment under mpirun, SIGKILL midway, resume ---------------------------
resumed() {
  local n; n=$(count_jobs)
  (( n == jobs_expected )) || { echo "$n job files, expected $jobs_expected"; return 1; }
  [[ -s "$out/summary.csv" ]] || { echo "no summary.csv"; return 1; }
  grep -lq 'resumed from the checkpoint' "$out"/logs/* || { echo "no job log says 'resumed from the checkpoint'"; return 1; }
}
if step mpi-killed 180 "${self[@]}" --call run_and_kill 170; then
  CHECK=resumed; step mpi-resumed 240 "${mpi_command[@]}"
  {
    echo "### mpi-resumed: summary.csv"; echo; echo '```'; cat "$out/summary.csv" 2>/dev/null; echo '```'; echo
    echo "### job logs that resumed"; echo; echo '```'; grep -H 'resumed from the checkpoint' "$out"/logs/* 2>/dev/null; echo '```'; echo
  } >> "$details"
else
  echo "| mpi-resumed | | | skipped: the kill step failed |" >> "$report"
  failed=$((failed + 1))
fi

# --- many jobs per GPU: whole experiments under mpirun, ranks sharing the GPU, against the CPU ----
step throughput 360 "${self[@]}" --call throughput
{
  echo "### throughput"; echo; grep '^|' "$report_dir/logs/throughput.log" 2>/dev/null; echo
} >> "$details"

{
  echo
  echo "**$failed step(s) failed**, $((SECONDS - started)) s in all."
  echo
  cat "$details"
} >> "$report"
rm -f "$details"
rm -rf "$work"
echo "run_on_gpu.sh: $failed step(s) failed; report: $report" >&2
exit "$failed"
