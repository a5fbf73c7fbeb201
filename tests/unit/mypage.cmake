# The "my page" projection and its read side (needs the mypage targets).
if(TARGET mypage_service)
  add_executable(test_mypage_projection ${CMAKE_CURRENT_LIST_DIR}/test_mypage_projection.c)
  target_link_libraries(test_mypage_projection PRIVATE mypage_service bss_testutil)
  add_test(NAME unit_mypage_projection COMMAND test_mypage_projection)
  set_tests_properties(unit_mypage_projection PROPERTIES TIMEOUT 60)
endif()
