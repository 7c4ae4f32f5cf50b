# Whole-runtime tests of issue "Runtime core": CLI, scheduler and signals, leases across
# real processes.
add_library(tf_proc STATIC ${CMAKE_CURRENT_LIST_DIR}/tf_proc.c)
target_include_directories(tf_proc PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(tf_proc PUBLIC tf_test_support PkgConfig::JANSSON)

foreach(t cli scheduler lease_replicas)
    tf_add_test(integration_${t} SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_${t}.c
        LIBS tf_proc tickflow_sdk LABELS integration TIMEOUT 240)
    add_dependencies(integration_${t} tickflow source_generate sink_stdout)
endforeach()
target_compile_definitions(integration_cli PRIVATE
    TF_VERSION_STRING_FOR_TEST="${PROJECT_VERSION}")

# Market sources against the fake exchange (issue "Market-data sources").
tf_add_test(integration_sources_live SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sources_live.c
    LIBS tf_proc tickflow_sdk LABELS integration TIMEOUT 240)
add_dependencies(integration_sources_live tickflow tickflow-fake-exchange source_bithumb
    source_binance_futures source_fx sink_stdout)

# Fenced writes across replicas (issue "Premium calculation, the Redis cache sink...").
tf_add_test(integration_fencing SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_fencing.c
    LIBS tf_proc tickflow_sdk LABELS integration TIMEOUT 240)
add_dependencies(integration_fencing tickflow source_generate sink_redis)

# Reload without a gap (issue 10): a SIGHUP storm against a leased pipeline writing to Redis.
tf_add_test(integration_reload SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_reload.c
    LIBS tf_proc tickflow_sdk LABELS integration TIMEOUT 240)
add_dependencies(integration_reload tickflow source_generate sink_redis sink_stdout
    sink_http_api)
