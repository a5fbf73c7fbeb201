# The Kafka bus backend against librdkafka's mock cluster (tests/kafka/):
# the helper program every Kafka test starts, the end-to-end scenarios of
# tests/integration run again in Kafka mode (BSS_TEST_BUS=kafka, same test
# code; mypage's includes kill -9 of a consumer, twice), and the Kafka fault
# tests.
set(BSS_KAFKA_TEST_DIR ${CMAKE_SOURCE_DIR}/tests/kafka)
add_executable(bssiot-kafka-mock ${BSS_KAFKA_TEST_DIR}/kafka_mock.c)
target_link_libraries(bssiot-kafka-mock PRIVATE PkgConfig::RDKAFKA)

foreach(scenario lines_and_orders usage month_end mypage)
  add_test(NAME kafka_${scenario}
    COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/test_${scenario}.py
            --bin-dir ${CMAKE_BINARY_DIR}/bin)
  set_tests_properties(kafka_${scenario} PROPERTIES TIMEOUT 400
    ENVIRONMENT "BSS_TEST_BUS=kafka")
endforeach()

add_test(NAME kafka_faults
  COMMAND python3 ${BSS_KAFKA_TEST_DIR}/test_kafka_faults.py --bin-dir ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(kafka_faults PROPERTIES TIMEOUT 300)
