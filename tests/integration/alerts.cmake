# Alerting and scraping, issue "HTTP API and Prometheus metrics": docs/alerts.yaml checked and
# unit-tested with promtool (Debian package prometheus), and a live scrape of a real runtime's
# /metrics checked with `promtool check metrics`, with /healthz and /readyz following Redis.
tf_add_test(integration_alerts SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_alerts.c
    LIBS tf_test_support LABELS integration TIMEOUT 120)

tf_add_test(integration_metrics_scrape SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_metrics_scrape.c
    LIBS tf_proc tickflow_sdk LABELS integration TIMEOUT 180)
add_dependencies(integration_metrics_scrape tickflow source_generate sink_stdout)
