#!/usr/bin/env bash
# Installs the Debian 12 packages diffpool needs, only those that are missing.
#   jobs/install-deps.sh          build and run (compiler, CMake, libraries, Open MPI)
#   jobs/install-deps.sh --tests  also what the test suite uses (PyTorch reference, h5py, plots, the
#                                 results package's data frames (pandas), Slurm, clang with its
#                                 libFuzzer and sanitizer runtimes for tests/fuzz)
# Runs apt-get as root (or through sudo when not root). Nothing is downloaded from elsewhere.
set -euo pipefail

packages=(build-essential cmake pkg-config git
          libopenblas-dev libfmt-dev libyaml-cpp-dev libcli11-dev zlib1g-dev
          libhdf5-dev hdf5-tools libopenmpi-dev openmpi-bin
          libgtest-dev libbenchmark-dev time)
if [[ "${1:-}" == "--tests" ]]; then
  packages+=(python3 python3-numpy python3-torch python3-h5py python3-matplotlib python3-pandas
             slurmctld slurmd slurm-client munge iproute2 procps
             clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
