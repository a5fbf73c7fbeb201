# Concurrent POSTs through the gateway: group commit keeps every acknowledged
# write across kill -9, and a failing request does not disturb its group.
add_test(NAME concurrent_writes
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_concurrent_writes.py
          --bin-dir ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(concurrent_writes PROPERTIES TIMEOUT 300)
