/* Loader test plugin bad_name: see test_plugin.c for what it must trigger. */
#include <tickflow/tickflow.h>

static int init(const tf_host *h, tf_instance *s, const tf_options *o, void **inst)
{
    (void)h, (void)s, (void)o;
    *inst = (void *)1;
    return TF_OK;
}
static void destroy(void *i)
{
    (void)i;
}
static int collect(void *i, const tf_tick *t, tf_batch *b)
{
    (void)i, (void)t, (void)b;
    return TF_OK;
}
static const tf_option_def options[] = {
    {"symbols", TF_OPT_LIST, "[BTC]", 0, "Symbols", TF_OPT_STRING, NULL},
    {NULL, 0, NULL, 0, NULL, 0, NULL},
};
TF_PLUGIN_EXPORT const tf_plugin_descriptor tickflow_plugin = {
    TF_PLUGIN_HEADER,      .name = "Bad Name!", .kind = TF_KIND_SOURCE,
    .description = "test", .version = "1",      .options = options,
    .init = init,          .destroy = destroy,  .collect = collect,
};
