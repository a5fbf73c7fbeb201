# The rater and billing aggregates, handlers and routes (needs their targets).
if(TARGET rater_domain AND TARGET billing_domain)
  add_executable(test_rater_billing ${CMAKE_CURRENT_LIST_DIR}/test_rater_billing.c)
  target_link_libraries(test_rater_billing PRIVATE rater_domain billing_domain bss_testutil)
  add_test(NAME unit_rater_billing COMMAND test_rater_billing)
  set_tests_properties(unit_rater_billing PROPERTIES TIMEOUT 60)
endif()
