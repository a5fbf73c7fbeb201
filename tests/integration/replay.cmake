# bssiot-replay against a real system's logs (tests/integration/test_replay.py);
# rebuild/verify are checked when the mypage service is built too.
add_test(NAME replay
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_replay.py
          --bin-dir $<TARGET_FILE_DIR:bssiot-replay> ReplayTest)
set_tests_properties(replay PROPERTIES TIMEOUT 300)

# The same tool reading the Kafka topics of a system on the Kafka bus
# (librdkafka's mock cluster, bssiot-kafka-mock).
add_test(NAME kafka_replay
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_replay.py
          --bin-dir $<TARGET_FILE_DIR:bssiot-replay> KafkaReplayTest)
set_tests_properties(kafka_replay PROPERTIES TIMEOUT 300)
