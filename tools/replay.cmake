# bssiot-replay: the event logs (SQLite stores or Kafka topics) as a
# debugging tool (README "Debugging with the event logs"). replay_core is
# everything but rebuild/verify, a library of its own so the fuzz target
# (tests/fuzz/fuzz_replay_event.c) links the exact decoding path;
# rebuild/verify fold events with the mypage service's own projection
# library when the build has it.
add_library(replay_core STATIC
  ${CMAKE_CURRENT_LIST_DIR}/replay_event.c
  ${CMAKE_CURRENT_LIST_DIR}/replay_format.c
  ${CMAKE_CURRENT_LIST_DIR}/replay_log.c
  ${CMAKE_CURRENT_LIST_DIR}/replay_kafka.c
  ${CMAKE_CURRENT_LIST_DIR}/replay_timeline.c
  ${CMAKE_CURRENT_LIST_DIR}/replay_at.c)
target_include_directories(replay_core PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(replay_core PUBLIC bsscore)

add_executable(bssiot-replay ${CMAKE_CURRENT_LIST_DIR}/replay.c)
target_link_libraries(bssiot-replay PRIVATE replay_core)
if(TARGET mypage_projection)
  target_sources(bssiot-replay PRIVATE ${CMAKE_CURRENT_LIST_DIR}/replay_rebuild.c)
  target_compile_definitions(bssiot-replay PRIVATE BSS_REPLAY_HAVE_MYPAGE=1)
  target_link_libraries(bssiot-replay PRIVATE mypage_projection)
endif()
