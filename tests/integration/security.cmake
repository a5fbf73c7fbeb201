# Tokens, roles, rate limits, idempotency keys, size limits, gateway-only
# services and dead letters, end to end; and a store that cannot write.
add_test(NAME security
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_security.py --bin-dir ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(security PROPERTIES TIMEOUT 300)
add_test(NAME store_faults
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_store_faults.py --bin-dir ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(store_faults PROPERTIES TIMEOUT 300)
