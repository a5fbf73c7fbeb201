# bssiot-replay against a real system's logs (tests/integration/test_replay.py);
# rebuild/verify are checked when the mypage service is built too.
add_test(NAME replay
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_replay.py
          --bin-dir $<TARGET_FILE_DIR:bssiot-replay>)
set_tests_properties(replay PROPERTIES TIMEOUT 300)
