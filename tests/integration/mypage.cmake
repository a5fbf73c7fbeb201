# The "my page" read model through the gateway (tests/integration/test_mypage.py).
if(TARGET bssiot-mypage)
  add_test(NAME mypage
    COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_mypage.py
            --bin-dir $<TARGET_FILE_DIR:bssiot-mypage>)
  set_tests_properties(mypage PROPERTIES TIMEOUT 300)
endif()
