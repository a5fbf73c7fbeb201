# bssiot-replay's Kafka reader against librdkafka's mock cluster, in
# process (tools/replay_kafka.h; the tool's own library, tools/replay.cmake).
if(TARGET replay_core)
  add_executable(test_replay_kafka ${CMAKE_CURRENT_LIST_DIR}/test_replay_kafka.c)
  target_include_directories(test_replay_kafka PRIVATE ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(test_replay_kafka PRIVATE replay_core)
  add_test(NAME unit_replay_kafka COMMAND test_replay_kafka)
  set_tests_properties(unit_replay_kafka PROPERTIES TIMEOUT 120)
endif()
