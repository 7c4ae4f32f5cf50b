# ./scripts/demo end to end (issue "HTTP API and Prometheus metrics...", the demo test).
tf_add_test(integration_demo SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_demo.c
    LIBS tf_test_support LABELS integration TIMEOUT 400)
get_property(TF_ALL_PLUGINS GLOBAL PROPERTY TF_PLUGIN_TARGETS)
add_dependencies(integration_demo tickflow tickflow-fake-exchange ${TF_ALL_PLUGINS})

# The API role as deployed: batch + API replicas, SSE resume, Redis outage and recovery.
tf_add_test(integration_api_replica SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_api_replica.c
    LIBS tf_test_support LABELS integration TIMEOUT 300)
add_dependencies(integration_api_replica tickflow tickflow-fake-exchange ${TF_ALL_PLUGINS})

# /v1/stream under a real EventSource client cut 50 times (issue "Contracts that hold under
# real clients"): every (pair, tick) exactly once.
tf_add_test(integration_sse_clients SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sse_clients.c
    LIBS tf_test_support LABELS integration TIMEOUT 300)
target_compile_definitions(integration_sse_clients PRIVATE
    TF_TEST_CLIENTS_DIR="${TF_TEST_CLIENTS_DIR}")
set_tests_properties(integration_sse_clients PROPERTIES FIXTURES_REQUIRED test_clients)
add_dependencies(integration_sse_clients tickflow tickflow-fake-exchange ${TF_ALL_PLUGINS})

# Redis losing its data (empty restart), closing idle connections (timeout) or refusing writes
# (OOM), and Redis down as the API's two /readyz see it (issue 10, sections 1 and 4).
tf_add_test(integration_redis_recovery SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_redis_recovery.c
    LIBS tf_test_support LABELS integration TIMEOUT 300)
add_dependencies(integration_redis_recovery tickflow tickflow-fake-exchange ${TF_ALL_PLUGINS})
