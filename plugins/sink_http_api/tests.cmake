# The http_api sink's tests (included from tests/CMakeLists.txt with TF_PLUGIN_TEST_DIR set).
tf_add_test(plugin_sink_http_api SOURCES ${TF_PLUGIN_TEST_DIR}/test_http_api.c
    LIBS PkgConfig::JANSSON PkgConfig::CURL LABELS plugin TIMEOUT 180)
add_dependencies(plugin_sink_http_api sink_http_api source_generate sink_stdout)

# docs/openapi.yaml against the OpenAPI 3.1 schema, with a real validator from npm (the pinned
# clients of tests/clients; needs node and npm: the Debian packages nodejs and npm).
add_test(NAME openapi_valid
    COMMAND bash ${TF_PLUGIN_TEST_DIR}/validate-openapi.sh ${CMAKE_SOURCE_DIR}/docs/openapi.yaml
            ${TF_TEST_CLIENTS_DIR})
set_tests_properties(openapi_valid PROPERTIES TIMEOUT 300 LABELS "docs"
    FIXTURES_REQUIRED test_clients)

# Redocly CLI's recommended rules over docs/openapi.yaml: 0 errors, 0 warnings, nothing ignored.
add_test(NAME openapi_lint
    COMMAND bash ${TF_PLUGIN_TEST_DIR}/lint-openapi.sh ${CMAKE_SOURCE_DIR}/docs/openapi.yaml
            ${TF_TEST_CLIENTS_DIR})
set_tests_properties(openapi_lint PROPERTIES TIMEOUT 300 LABELS "docs"
    FIXTURES_REQUIRED test_clients)
