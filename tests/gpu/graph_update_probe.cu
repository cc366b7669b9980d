// Probe: what a step of many small launches costs the host issued one by one, against captured
// into a CUDA graph that updates the last step's executable graph, with sizes changing every step
// (as batches of graphs do). Not part of the build; on a GPU machine:
//
//   nvcc -O2 -arch=sm_90 -o graph_update_probe tests/gpu/graph_update_probe.cu -lcublas
//   ./graph_update_probe [launches per step, default 120]
//
// Per step: `launches` tiny elementwise kernels of 400 to 1200 elements (four kernel functions in
// turn), 9 small cuBLAS products and one upload from page-locked memory. Prints microseconds per
// step (300 steps, then synchronised) for: direct launches; capture + update (or instantiate) +
// launch of a graph each step; and replaying one graph without changes (the device's own time).
// docs/PERFORMANCE.md, "Steps as CUDA graphs", quotes it.
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <algorithm>
#define CK(x) do { cudaError_t e = (x); if (e != cudaSuccess) { std::printf("%s:%d %s\n", __FILE__, __LINE__, cudaGetErrorString(e)); std::exit(1);} } while (0)
__global__ void k_add(int n, const float* a, float* b) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) b[i] += a[i]; }
__global__ void k_mul(int n, const float* a, float* b) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) b[i] *= 0.999f + 0.0f * a[i]; }
__global__ void k_relu(int n, const float* a, float* b) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < n) b[i] = fmaxf(a[i], 0.f) * 1e-3f + b[i]; }
struct Desc { int n; const float* a; float* b; int pad[8]; };
__global__ void k_desc(Desc d) { int i = blockIdx.x * blockDim.x + threadIdx.x; if (i < d.n) d.b[i] += 1e-6f * d.a[i]; }
static double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
int launches = 120, gemms = 9, steps = 300;
float *A, *B, *C; cublasHandle_t h; float* pinned; float* devup;
void step(cudaStream_t s, int n) {
  int grid = (n + 255) / 256;
  CK(cudaMemcpyAsync(devup, pinned, sizeof(float) * 4096, cudaMemcpyHostToDevice, s));
  for (int i = 0; i < launches; ++i) {
    switch (i % 4) {
      case 0: k_add<<<grid, 256, 0, s>>>(n, A, B); break;
      case 1: k_mul<<<grid, 256, 0, s>>>(n, A, B); break;
      case 2: k_relu<<<grid, 256, 0, s>>>(n, B, C); break;
      default: { Desc d{n, A, C, {}}; k_desc<<<grid, 256, 0, s>>>(d); }
    }
    if (i % (launches / gemms) == 0 && i / (launches / gemms) < gemms) {
      float one = 1, zero = 0; int m = 64 + n % 64;
      cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, m, 64, 64, &one, A, m, B, 64, &zero, C, m);
    }
  }
}
int main(int argc, char** argv) {
  if (argc > 1) launches = std::atoi(argv[1]);
  CK(cudaMalloc(&A, 1 << 24)); CK(cudaMalloc(&B, 1 << 24)); CK(cudaMalloc(&C, 1 << 24)); CK(cudaMalloc(&devup, 1 << 16));
  CK(cudaMallocHost(&pinned, 1 << 16));
  CK(cudaMemset(A, 0, 1 << 24)); CK(cudaMemset(B, 0, 1 << 24)); CK(cudaMemset(C, 0, 1 << 24));
  cudaStream_t s; CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cublasCreate(&h); cublasSetStream(h, s);
  void* ws; CK(cudaMalloc(&ws, 32 << 20)); cublasSetWorkspace(h, ws, 32 << 20);
  std::vector<int> ns(steps); srand(1); for (auto& n : ns) n = 400 + rand() % 800;
  for (int rep = 0; rep < 3; ++rep) {
    // A: direct launches
    CK(cudaStreamSynchronize(s)); double t0 = now();
    for (int k = 0; k < steps; ++k) step(s, ns[k]);
    double th = now(); CK(cudaStreamSynchronize(s)); double t1 = now();
    std::printf("direct        : %7.1f us/step (host issue %7.1f)\n", 1e6 * (t1 - t0) / steps, 1e6 * (th - t0) / steps);
    // B: capture + update + launch every step
    cudaGraphExec_t exec = nullptr; double tc = 0, tu = 0, tl = 0; int fails = 0;
    CK(cudaStreamSynchronize(s)); t0 = now();
    for (int k = 0; k < steps; ++k) {
      double a = now();
      cudaGraph_t g; CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal)); step(s, ns[k]); CK(cudaStreamEndCapture(s, &g));
      double b = now();
      if (exec) { cudaGraphExecUpdateResultInfo info; if (cudaGraphExecUpdate(exec, g, &info) != cudaSuccess) { cudaGetLastError(); ++fails; CK(cudaGraphExecDestroy(exec)); exec = nullptr; } }
      if (!exec) CK(cudaGraphInstantiate(&exec, g, 0));
      double c = now();
      CK(cudaGraphLaunch(exec, s)); CK(cudaGraphDestroy(g));
      double d = now(); tc += b - a; tu += c - b; tl += d - c;
    }
    th = now(); CK(cudaStreamSynchronize(s)); t1 = now();
    std::printf("capture+update: %7.1f us/step (host issue %7.1f: capture %.1f, update %.1f, launch %.1f; update failures %d)\n",
                1e6 * (t1 - t0) / steps, 1e6 * (th - t0) / steps, 1e6 * tc / steps, 1e6 * tu / steps, 1e6 * tl / steps, fails);
    // C: replay one exec (lower bound for device side)
    CK(cudaStreamSynchronize(s)); t0 = now();
    for (int k = 0; k < steps; ++k) CK(cudaGraphLaunch(exec, s));
    th = now(); CK(cudaStreamSynchronize(s)); t1 = now();
    std::printf("replay only   : %7.1f us/step (host issue %7.1f)\n", 1e6 * (t1 - t0) / steps, 1e6 * (th - t0) / steps);
    CK(cudaGraphExecDestroy(exec));
  }
  return 0;
}
