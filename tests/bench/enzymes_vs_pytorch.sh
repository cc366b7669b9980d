#!/usr/bin/env bash
# The ENZYMES benchmark: seconds per training epoch of the paper's ENZYMES configuration
# (configs/bench_enzymes.yaml: one pooling level, clusters 10% of the largest graph, hidden and
# embedding 30, batch 20, link-prediction loss on) with this engine and with a padded-dense PyTorch
# DiffPool (tests/bench/pytorch_padded_diffpool.py, padding to each batch's largest graph), both on
# one thread, in alternating rounds of one run; prints each round, the medians and their ratio.
#   BUILD_DIR      build folder with bench_epoch (default: build)
#   DIFFPOOL_DATA  the TU datasets (default: ../shared/datasets beside the checkout)
#   ROUNDS         alternating rounds (default 3); EPOCHS timed epochs per round (default 10 / 5)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD_DIR:-$root/build}"
export DIFFPOOL_DATA="${DIFFPOOL_DATA:-$(cd "$root/.." && pwd)/shared/datasets}"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
rounds="${ROUNDS:-3}"
[[ -x "$build/bench_epoch" ]] || cmake --build "$build" --target bench_epoch
engine=()
torch=()
for ((r = 1; r <= rounds; ++r)); do
  e=$("$build/bench_epoch" "$root/configs/bench_enzymes.yaml" --epochs "${EPOCHS:-10}" |
      sed -n 's/.*engine seconds_per_epoch=\([0-9.]*\).*/\1/p')
  t=$(/usr/bin/python3 "$root/tests/bench/pytorch_padded_diffpool.py" --data-dir "$DIFFPOOL_DATA" \
        --epochs "${EPOCHS:-5}" --threads 1 |
      sed -n 's/.*pytorch_padded seconds_per_epoch=\([0-9.]*\).*/\1/p')
  [[ -n "$e" && -n "$t" ]] || { echo "enzymes_vs_pytorch: a benchmark printed no timing" >&2; exit 1; }
  echo "round $r: engine $e s/epoch, pytorch padded $t s/epoch"
  engine+=("$e")
  torch+=("$t")
done
/usr/bin/python3 - "${engine[*]}" "${torch[*]}" <<'PY'
import statistics, sys
engine = [float(x) for x in sys.argv[1].split()]
torch = [float(x) for x in sys.argv[2].split()]
e, t = statistics.median(engine), statistics.median(torch)
print(f"median: engine {e:.4f} s/epoch, pytorch padded {t:.4f} s/epoch, ratio {t / e:.2f}x")
PY
