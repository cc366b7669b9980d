#pragma once
// What the CUDA emulation counts (tests/cuda_emulation/emulator.cpp), for tests that check how a
// training step uses the device: kernel launches and cuBLAS calls (each a launch on a GPU), the
// copies in each direction (a device-to-host copy makes the host wait for the stream), stream
// synchronisations, and allocations (cudaMalloc and cudaFree synchronise the device on a GPU).
// Counts since the process started; take differences.
struct DiffpoolEmulatorCounters {
  long long kernel_launches;
  long long cublas_calls;
  long long host_to_device, device_to_host, device_to_device;
  long long stream_synchronizations;
  long long mallocs, frees;
  // Host-to-device copies from memory that is not page-locked (on a GPU the driver stages them
  // through its own buffer and may wait for the stream), bytes copied host to device, page-locked
  // allocations (cudaHostAlloc), and event waits that had queued work to wait for.
  long long host_to_device_pageable, host_to_device_bytes;
  long long pinned_allocations;
  long long event_waits;
  // CUDA graphs: launches of a graph, instantiations, successful updates of an instantiated graph.
  long long graph_launches, graph_instantiations, graph_updates;
  // Bytes of kernel arguments passed by value (the sum of the kernels' parameter sizes, padding
  // between parameters left out): what a GPU's driver copies for each launch, and records into a
  // graph's node while a stream is captured.
  long long kernel_argument_bytes;
  // Device memory allocated and not yet freed now (cudaMalloc's bytes less cudaFree's): what the
  // process holds on a GPU, its caching allocator's free lists included.
  long long device_bytes;
};
extern "C" DiffpoolEmulatorCounters diffpool_emulator_counters();

#include <map>
#include <string>
// Kernel launches by launch site (DP_CUDA_SITE's name), and cuBLAS calls as "cublas", since the
// process started: a launch profile without a GPU.
std::map<std::string, long long> diffpool_emulator_launches_by_site();
// Bytes of kernel arguments by launch site, as kernel_argument_bytes counts them.
std::map<std::string, long long> diffpool_emulator_argument_bytes_by_site();

// From now on (skip true), kernel launches and cuBLAS calls are checked and counted but compute
// nothing; copies and memsets still run. For timing the host's side of a step (the engine and the
// backend's own code up to each launch) without a GPU: results are garbage meanwhile.
void diffpool_emulator_skip_device_work(bool skip);
