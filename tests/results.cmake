# The results/ library: HDF5 wrapper and atomic result files. Label "results" (and "unit").
diffpool_add_gtest(test_hdf5
  LABELS unit results
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_hdf5.cpp
  LIBS diffpool_results
  TIMEOUT 120)
