# The premium transform's tests (included from tests/CMakeLists.txt with TF_PLUGIN_TEST_DIR set).
tf_add_test(plugin_premium SOURCES ${TF_PLUGIN_TEST_DIR}/test_premium.c LABELS plugin TIMEOUT 120)
add_dependencies(plugin_premium transform_premium source_generate sink_stdout)
