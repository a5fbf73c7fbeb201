# The chaos test (tests/integration/test_chaos.py): the same month twice,
# once fault-free and once under kill -9 of random services, must end equal.
# It runs two whole systems one after the other; the test itself takes about
# two minutes under ASan, the timeout leaves room for a loaded machine.
add_test(NAME chaos
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_chaos.py --bin-dir ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(chaos PROPERTIES TIMEOUT 600)
