# The gateway's own upstream client: its answer parser on fixed inputs.
add_executable(test_upstream_answer ${CMAKE_CURRENT_LIST_DIR}/test_upstream_answer.c)
target_link_libraries(test_upstream_answer PRIVATE gateway_upstream)
add_test(NAME unit_upstream_answer COMMAND test_upstream_answer)
