# End-to-end check against an independent PyTorch implementation (tests/reference/): same weights
# and batch (20 ENZYMES graphs), same losses, logits and parameter gradients, then ten Adam steps.
# Needs /usr/bin/python3 with python3-torch and the ENZYMES files in DIFFPOOL_TEST_DATA_DIR.
diffpool_add_gtest(test_reference LABELS "reference" SOURCES unit/test_reference.cpp LIBS yaml-cpp TIMEOUT 300)
