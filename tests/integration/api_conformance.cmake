# The HTTP API against docs/openapi.yaml: Prism (tests/clients), a validating proxy, in front of
# a real API replica fed by a real batch replica; every documented request, success and error.
tf_add_test(integration_api_conformance SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_api_conformance.c
    LIBS tf_test_support PkgConfig::JANSSON PkgConfig::CURL LABELS integration TIMEOUT 300)
target_compile_definitions(integration_api_conformance PRIVATE
    TF_TEST_CLIENTS_DIR="${TF_TEST_CLIENTS_DIR}")
set_tests_properties(integration_api_conformance PROPERTIES FIXTURES_REQUIRED test_clients)
get_property(TF_ALL_PLUGINS GLOBAL PROPERTY TF_PLUGIN_TARGETS)
add_dependencies(integration_api_conformance tickflow tickflow-fake-exchange ${TF_ALL_PLUGINS})
