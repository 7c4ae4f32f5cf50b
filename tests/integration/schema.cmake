# The Redis schema of docs/redis.md against the real batch and API roles (issue 9, "Redis
# schema as documented"): the key table and its sizes, a closed position's live block, and
# the FX key that only the FX pipeline writes.
tf_add_test(integration_redis_schema SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_redis_schema.c
    LIBS tf_proc tickflow_core LABELS integration TIMEOUT 240)
get_property(TF_ALL_PLUGINS GLOBAL PROPERTY TF_PLUGIN_TARGETS)
add_dependencies(integration_redis_schema tickflow tickflow-fake-exchange ${TF_ALL_PLUGINS})
