# Billing's month end: the charge rules, the handler against a real store,
# the charge and invoice routes and the invoice mail (needs billing_domain).
if(TARGET billing_domain)
  add_executable(test_charges ${CMAKE_CURRENT_LIST_DIR}/test_charges.c)
  target_link_libraries(test_charges PRIVATE billing_domain bss_testutil)
  add_test(NAME unit_charges COMMAND test_charges)
  set_tests_properties(unit_charges PROPERTIES TIMEOUT 60)
endif()
