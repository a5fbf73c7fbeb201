# The rater's usage rating pieces that stand alone (needs the rater target).
if(TARGET rater_domain)
  add_executable(test_usage_seen ${CMAKE_CURRENT_LIST_DIR}/test_usage_seen.c)
  target_link_libraries(test_usage_seen PRIVATE rater_domain)
  add_test(NAME unit_usage_seen COMMAND test_usage_seen)
  set_tests_properties(unit_usage_seen PROPERTIES TIMEOUT 120)
endif()
