# Tests of the binance_positions source (included by tests/CMakeLists.txt with
# TF_PLUGIN_TEST_DIR set). sign.c is compiled in so the test checks the plugin's own signing.
if(TF_BUILD_TESTS)
    tf_add_test(plugin_binance_positions
        SOURCES ${TF_PLUGIN_TEST_DIR}/test_binance_positions.c ${TF_PLUGIN_TEST_DIR}/sign.c
        LIBS tf_test_support PkgConfig::OPENSSL LABELS plugin TIMEOUT 180)
    add_dependencies(plugin_binance_positions source_binance_positions sink_stdout
        tickflow-fake-exchange)
endif()
