# Alerting and scraping, issue "HTTP API and Prometheus metrics": docs/alerts.yaml checked and
# unit-tested with promtool (Debian package prometheus), and a live scrape of a real runtime's
# /metrics checked with `promtool check metrics`, with /healthz and /readyz following Redis.
tf_add_test(integration_alerts SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_alerts.c
    LIBS tf_test_support LABELS integration TIMEOUT 120)

tf_add_test(integration_metrics_scrape SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_metrics_scrape.c
    LIBS tf_proc tickflow_sdk LABELS integration TIMEOUT 180)
add_dependencies(integration_metrics_scrape tickflow source_generate sink_stdout)

# docs/alerts.yaml in a real Prometheus server (Debian package prometheus) scraping a demo-like
# deployment every second, with shortened `for:`: healthy fires nothing; a frozen exchange, a
# frozen replica and stopped batch replicas fire their alerts, which resolve after recovery;
# the live metrics match docs/metrics.md and docs/api.md. About 2.5 minutes.
tf_add_test(integration_prometheus SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_prometheus.c
    LIBS tf_test_support LABELS integration TIMEOUT 400)
get_property(TF_ALL_PLUGINS GLOBAL PROPERTY TF_PLUGIN_TARGETS)
add_dependencies(integration_prometheus tickflow tickflow-fake-exchange ${TF_ALL_PLUGINS})
