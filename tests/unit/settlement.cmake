# The settlement aggregate, handler, report mail channel and routes (needs
# the settlement_domain target).
if(TARGET settlement_domain)
  add_executable(test_settlement ${CMAKE_CURRENT_LIST_DIR}/test_settlement.c)
  target_link_libraries(test_settlement PRIVATE settlement_domain bss_testutil)
  add_test(NAME unit_settlement COMMAND test_settlement)
  set_tests_properties(unit_settlement PROPERTIES TIMEOUT 60)
endif()
