# Tests of the bithumb source (included by tests/CMakeLists.txt with TF_PLUGIN_TEST_DIR set).
if(TF_BUILD_TESTS)
    tf_add_test(plugin_bithumb SOURCES ${TF_PLUGIN_TEST_DIR}/test_bithumb.c
        LIBS tf_test_support PkgConfig::CURL LABELS plugin TIMEOUT 180)
    add_dependencies(plugin_bithumb source_bithumb source_generate sink_stdout
        tickflow-fake-exchange)
endif()
