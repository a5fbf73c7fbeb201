# Rebuild of the mypage read model from 1,000,000 events (bench_replay.c).
# Runs bssiot-replay from the same bin dir: build that too.
add_executable(bench_replay ${CMAKE_CURRENT_LIST_DIR}/bench_replay.c)
target_link_libraries(bench_replay PRIVATE benchutil bsscore)
