# The envelope peek the consumer uses to pass events its handler ignores.
add_executable(test_evpeek ${CMAKE_CURRENT_LIST_DIR}/test_evpeek.c)
target_link_libraries(test_evpeek PRIVATE bsscore)
add_test(NAME unit_evpeek COMMAND test_evpeek)
set_tests_properties(unit_evpeek PROPERTIES TIMEOUT 60)
