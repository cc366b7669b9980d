#pragma once
// CPU emulation of the cuBLAS calls the CUDA backend makes: column-major gemm and strided batched
// gemm with cuBLAS's argument checks (leading dimensions against the column-major shapes), so the
// backend's row-major-to-column-major operand swap is exercised for real.
#include <cstdint>

#include "cuda_runtime.h"

struct cublasContext;
using cublasHandle_t = cublasContext*;
enum cublasStatus_t {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
};
enum cublasOperation_t { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 };
enum cublasMath_t { CUBLAS_DEFAULT_MATH = 0, CUBLAS_PEDANTIC_MATH = 2, CUBLAS_TF32_TENSOR_OP_MATH = 3 };
enum cublasPointerMode_t { CUBLAS_POINTER_MODE_HOST = 0, CUBLAS_POINTER_MODE_DEVICE = 1 };

const char* cublasGetStatusName(cublasStatus_t status);
const char* cublasGetStatusString(cublasStatus_t status);
cublasStatus_t cublasCreate(cublasHandle_t* handle);
cublasStatus_t cublasDestroy(cublasHandle_t handle);
cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream);
cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void* workspace, std::size_t bytes);
cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode);
cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode);
cublasStatus_t cublasSgemm_64(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int64_t m,
                              int64_t n, int64_t k, const float* alpha, const float* a, int64_t lda, const float* b,
                              int64_t ldb, const float* beta, float* c, int64_t ldc);
cublasStatus_t cublasDgemm_64(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int64_t m,
                              int64_t n, int64_t k, const double* alpha, const double* a, int64_t lda,
                              const double* b, int64_t ldb, const double* beta, double* c, int64_t ldc);
cublasStatus_t cublasSgemmStridedBatched_64(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                            int64_t m, int64_t n, int64_t k, const float* alpha, const float* a,
                                            int64_t lda, int64_t stride_a, const float* b, int64_t ldb,
                                            int64_t stride_b, const float* beta, float* c, int64_t ldc,
                                            int64_t stride_c, int64_t batch);
cublasStatus_t cublasDgemmStridedBatched_64(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                            int64_t m, int64_t n, int64_t k, const double* alpha, const double* a,
                                            int64_t lda, int64_t stride_a, const double* b, int64_t ldb,
                                            int64_t stride_b, const double* beta, double* c, int64_t ldc,
                                            int64_t stride_c, int64_t batch);
// Grouped batched gemm: host arrays of the per-group parameters, device arrays of the operand
// and output pointers (one per problem; group i holds group_size[i] problems).
cublasStatus_t cublasSgemmGroupedBatched_64(cublasHandle_t handle, const cublasOperation_t transa_array[],
                                           const cublasOperation_t transb_array[], const int64_t m_array[],
                                           const int64_t n_array[], const int64_t k_array[], const float alpha_array[],
                                           const float* const Aarray[], const int64_t lda_array[],
                                           const float* const Barray[], const int64_t ldb_array[],
                                           const float beta_array[], float* const Carray[], const int64_t ldc_array[],
                                           int64_t group_count, const int64_t group_size[]);
cublasStatus_t cublasDgemmGroupedBatched_64(cublasHandle_t handle, const cublasOperation_t transa_array[],
                                           const cublasOperation_t transb_array[], const int64_t m_array[],
                                           const int64_t n_array[], const int64_t k_array[], const double alpha_array[],
                                           const double* const Aarray[], const int64_t lda_array[],
                                           const double* const Barray[], const int64_t ldb_array[],
                                           const double beta_array[], double* const Carray[], const int64_t ldc_array[],
                                           int64_t group_count, const int64_t group_size[]);
