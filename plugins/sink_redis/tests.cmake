# The redis sink's tests (included from tests/CMakeLists.txt with TF_PLUGIN_TEST_DIR set).
tf_add_test(plugin_sink_redis SOURCES ${TF_PLUGIN_TEST_DIR}/test_sink_redis.c LIBS PkgConfig::JANSSON
    LABELS plugin TIMEOUT 180)
add_dependencies(plugin_sink_redis sink_redis source_generate sink_stdout)
