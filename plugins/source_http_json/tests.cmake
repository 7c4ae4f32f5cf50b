# Tests of the http_json source (included by tests/CMakeLists.txt with TF_PLUGIN_TEST_DIR set).
if(TF_BUILD_TESTS)
    tf_add_test(plugin_http_json SOURCES ${TF_PLUGIN_TEST_DIR}/test_http_json.c
        LIBS tf_test_support PkgConfig::CURL LABELS plugin TIMEOUT 180)
    add_dependencies(plugin_http_json source_http_json source_bithumb source_generate sink_stdout
        tickflow tickflow-fake-exchange)
endif()
