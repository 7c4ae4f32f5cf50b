# The redis source's tests (included from tests/CMakeLists.txt with TF_PLUGIN_TEST_DIR set). They
# read back what the real redis sink wrote.
tf_add_test(plugin_source_redis SOURCES ${TF_PLUGIN_TEST_DIR}/test_source_redis.c
    LIBS PkgConfig::JANSSON LABELS plugin TIMEOUT 180)
add_dependencies(plugin_source_redis source_redis sink_redis source_generate sink_stdout)
