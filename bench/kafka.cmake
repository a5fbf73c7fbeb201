# Kafka bus throughput beside nng (bench_kafka.py, see its header). It drives
# the multi-process bus programs of tests/bus and bssiot-kafka-mock; this
# target runs it from a build: cmake --build <dir> --target bench_kafka
add_custom_target(bench_kafka
  COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/bench_kafka.py --bin-dir ${CMAKE_BINARY_DIR}/bin
  DEPENDS bus_producer bus_consumer bssiot-kafka-mock
  USES_TERMINAL)
