# The event store's group commit and statement cache, with real threads.
add_executable(test_group_commit ${CMAKE_CURRENT_LIST_DIR}/test_group_commit.c)
target_link_libraries(test_group_commit PRIVATE bss_testutil Threads::Threads)
add_test(NAME unit_group_commit COMMAND test_group_commit)
set_tests_properties(unit_group_commit PROPERTIES TIMEOUT 180)
