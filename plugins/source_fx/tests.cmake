# The fx source's tests (included from tests/CMakeLists.txt with TF_PLUGIN_TEST_DIR set).
tf_add_test(plugin_fx SOURCES ${TF_PLUGIN_TEST_DIR}/test_fx.c LIBS PkgConfig::CURL
    LABELS plugin TIMEOUT 180)
add_dependencies(plugin_fx source_fx source_generate sink_stdout tickflow-fake-exchange)
