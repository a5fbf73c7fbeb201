# Listing and re-driving dead letters (shared/deadletters.h).
add_executable(test_deadletters test_deadletters.c)
target_link_libraries(test_deadletters PRIVATE bss_testutil)
add_test(NAME unit_deadletters COMMAND test_deadletters)
