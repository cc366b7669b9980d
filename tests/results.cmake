# The results/ library: HDF5 wrapper and atomic result files. Label "results" (and "unit").
diffpool_add_gtest(test_hdf5
  LABELS unit results
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hdf5.cpp
  LIBS diffpool_results
  TIMEOUT 120)

# Job records, summaries and `diffpool report`: round trips, CSV and table formats, threads.
diffpool_add_gtest(test_results
  LABELS unit results
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_results.cpp
  LIBS diffpool_results
  TIMEOUT 120)

# The Python package results/python/diffpool_results (Debian's /usr/bin/python3 with h5py, numpy,
# matplotlib): load_job / load_experiment checked value by value, every plot rendered, h5dump -H.
diffpool_add_gtest(test_results_python
  LABELS unit results
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_results_python.cpp
  LIBS diffpool_results
  TIMEOUT 300)

# The checksum block of result files: damaged job files, summaries and checkpoints (one byte short,
# one bit flipped, the libhdf5 crashes of tests/fuzz/known/) named before libhdf5 parses them; files
# of earlier versions still read; h5dump, h5py and the Python reader on files with the block.
diffpool_add_gtest(test_checksum_block
  LABELS unit results
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_checksum_block.cpp
  LIBS diffpool_runner
  TIMEOUT 120)
