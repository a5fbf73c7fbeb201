# The service runtime's test: config, logs, metrics, HTTP server, service skeleton.
add_executable(test_http_runtime ${CMAKE_CURRENT_LIST_DIR}/test_http_runtime.c)
target_link_libraries(test_http_runtime PRIVATE bsscore)
add_test(NAME http_runtime COMMAND test_http_runtime)
set_tests_properties(http_runtime PROPERTIES TIMEOUT 120)
