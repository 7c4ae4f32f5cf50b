# Tests of the positions transform (included by tests/CMakeLists.txt with TF_PLUGIN_TEST_DIR set).
if(TF_BUILD_TESTS)
    tf_add_test(plugin_positions SOURCES ${TF_PLUGIN_TEST_DIR}/test_positions_transform.c
        LIBS tf_test_support LABELS plugin TIMEOUT 120)
    add_dependencies(plugin_positions transform_positions source_generate sink_stdout)
endif()
