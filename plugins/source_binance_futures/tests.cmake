# Tests of the binance_futures source (included by tests/CMakeLists.txt with TF_PLUGIN_TEST_DIR
# set).
if(TF_BUILD_TESTS)
    tf_add_test(plugin_binance_futures SOURCES ${TF_PLUGIN_TEST_DIR}/test_binance_futures.c
        LIBS tf_test_support PkgConfig::CURL LABELS plugin TIMEOUT 180)
    add_dependencies(plugin_binance_futures source_binance_futures source_generate sink_stdout
        tickflow-fake-exchange)
endif()
