# Tests of the bithumb_balance source (included by tests/CMakeLists.txt with TF_PLUGIN_TEST_DIR
# set). The signing code is source_binance_positions/sign.c, as in the plugin.
if(TF_BUILD_TESTS)
    tf_add_test(plugin_bithumb_balance
        SOURCES ${TF_PLUGIN_TEST_DIR}/test_bithumb_balance.c
                ${TF_PLUGIN_TEST_DIR}/../source_binance_positions/sign.c
        LIBS tf_test_support PkgConfig::OPENSSL LABELS plugin TIMEOUT 180)
    target_include_directories(plugin_bithumb_balance PRIVATE
        ${TF_PLUGIN_TEST_DIR}/../source_binance_positions)
    add_dependencies(plugin_bithumb_balance source_bithumb_balance sink_stdout
        tickflow-fake-exchange)
endif()
