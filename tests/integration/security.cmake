# Security (issue "Security", items 1 and 4): secrets never leak from a running pipeline, and
# the Redis ACLs of docs/security.md are enough for each role and refuse the rest.
tf_add_test(integration_masking SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_masking.c
    LIBS tf_proc tickflow_core PkgConfig::CURL LABELS integration TIMEOUT 180)
add_dependencies(integration_masking tickflow tickflow-fake-exchange source_fx source_generate
    sink_redis sink_stdout)
tf_add_test(integration_redis_acl SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_redis_acl.c
    LIBS tf_proc tickflow_core PkgConfig::CURL LABELS integration TIMEOUT 180)
add_dependencies(integration_redis_acl tickflow tickflow-fake-exchange source_fx source_bithumb
    source_binance_futures source_redis transform_premium transform_positions sink_redis
    sink_http_api)
# Slow clients (issue 10, section 3): a 60 s slow-header attack on the API and the metrics
# listener leaves a normal client's requests all answered, p99 under 50 ms.
tf_add_test(integration_slowloris SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_slowloris.c
    LIBS tf_proc tickflow_core PkgConfig::CURL LABELS integration TIMEOUT 240)
add_dependencies(integration_slowloris tickflow source_redis sink_http_api)
