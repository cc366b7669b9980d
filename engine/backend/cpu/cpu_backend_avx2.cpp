// The CPU backend's loops compiled for AVX2 (namespace diffpool::cpu_avx2): the same source as
// cpu_backend.cpp, see the comment there. make_cpu_backend (in cpu_backend.cpp) uses it on CPUs
// that run AVX2 unless DIFFPOOL_CPU_LOOPS=baseline.
#define DIFFPOOL_CPU_AVX2 1
#include "engine/backend/cpu/cpu_backend.cpp"
