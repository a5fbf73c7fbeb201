# The customer service's line rendering (needs its domain library).
if(TARGET customer_domain)
  add_executable(test_customer_render ${CMAKE_CURRENT_LIST_DIR}/test_customer_render.c)
  target_link_libraries(test_customer_render PRIVATE customer_domain bss_testutil)
  add_test(NAME unit_customer_render COMMAND test_customer_render)
endif()
