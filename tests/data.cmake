# Data tests: TU dataset reader (real datasets from DIFFPOOL_DATA, malformed inputs, gzip),
# stratified splits, Graclus. Label "data"; all but the real-dataset loads are also "unit".
set(DIFFPOOL_DATA_TEST_DIR ${CMAKE_CURRENT_LIST_DIR}/data)
diffpool_add_gtest(data_tu_real_test LABELS data SOURCES ${DIFFPOOL_DATA_TEST_DIR}/tu_real_test.cpp TIMEOUT 120)
diffpool_add_gtest(data_tu_collab_test LABELS data SOURCES ${DIFFPOOL_DATA_TEST_DIR}/tu_collab_test.cpp TIMEOUT 120)
diffpool_add_gtest(data_tu_format_test LABELS data unit SOURCES ${DIFFPOOL_DATA_TEST_DIR}/tu_format_test.cpp TIMEOUT 120)
diffpool_add_gtest(data_splits_test LABELS data unit SOURCES ${DIFFPOOL_DATA_TEST_DIR}/splits_test.cpp TIMEOUT 60)
diffpool_add_gtest(data_graclus_test LABELS data unit SOURCES ${DIFFPOOL_DATA_TEST_DIR}/graclus_test.cpp TIMEOUT 60)
