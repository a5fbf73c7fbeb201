# bssiot-admin: operator commands (API tokens).
add_executable(bssiot-admin admin.c)
target_link_libraries(bssiot-admin PRIVATE gateway_security)
