# The rater's usage rating pieces that stand alone, and a file's rating on a
# store (needs the rater target).
if(TARGET rater_domain)
  add_executable(test_usage_seen ${CMAKE_CURRENT_LIST_DIR}/test_usage_seen.c)
  target_link_libraries(test_usage_seen PRIVATE rater_domain)
  add_test(NAME unit_usage_seen COMMAND test_usage_seen)
  set_tests_properties(unit_usage_seen PROPERTIES TIMEOUT 120)
endif()
if(TARGET rater_domain)
  add_executable(test_usage_ingest ${CMAKE_CURRENT_LIST_DIR}/test_usage_ingest.c)
  target_link_libraries(test_usage_ingest PRIVATE rater_domain bss_testutil)
  add_test(NAME unit_usage_ingest COMMAND test_usage_ingest)
  set_tests_properties(unit_usage_ingest PROPERTIES TIMEOUT 60)
endif()
