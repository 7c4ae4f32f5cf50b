# `tickflow keys` against a real redis-server and a store file (issue 6 "Security", item 2:
# the exchange API key store).
tf_add_test(integration_keys_cli SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_keys_cli.c
    LIBS tf_proc tickflow_core LABELS integration TIMEOUT 180)
add_dependencies(integration_keys_cli tickflow source_generate sink_stdout)
