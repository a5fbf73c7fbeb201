# The gateway's tokens, role policy, rate limits and idempotency keys.
add_executable(test_gateway_security test_gateway_security.c)
target_link_libraries(test_gateway_security PRIVATE gateway_security bss_testutil)
add_test(NAME unit_gateway_security COMMAND test_gateway_security)
