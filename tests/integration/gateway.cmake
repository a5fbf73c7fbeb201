# The gateway against real echo upstreams (tests/integration/test_gateway.py).
# The binary's directory comes from the target, wherever the build puts it.
add_test(NAME gateway
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_gateway.py
          --bin-dir $<TARGET_FILE_DIR:bssiot-gateway>)
set_tests_properties(gateway PROPERTIES TIMEOUT 300)
