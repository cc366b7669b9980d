#pragma once
// OpenBLAS starts its worker threads when the library is loaded, before main() runs, and they
// keep polling even after openblas_set_num_threads(1). With one rank per core those threads
// steal CPU from the other ranks, so the diffpool executables re-execute themselves once with
// OPENBLAS_NUM_THREADS=1 when the variable is not set (the configured backend.cpu_threads then
// raises the count at run time). Set OPENBLAS_NUM_THREADS yourself to skip this.
namespace diffpool {

// Call first in main(); returns only when no re-execution is needed (or it failed).
void ensure_blas_thread_environment(char** argv);

}  // namespace diffpool
