# `tickflow positions` against a real redis-server, and a running pipeline publishing live PnL
# (issue "Premium calculation, the Redis cache sink...", item 3: open arbitrage positions).
tf_add_test(integration_positions_cli SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_positions_cli.c
    LIBS tf_proc tickflow_core LABELS integration TIMEOUT 180)
add_dependencies(integration_positions_cli tickflow tickflow-fake-exchange source_generate
    sink_stdout source_bithumb source_binance_futures source_fx transform_premium
    transform_positions sink_redis)
