/*
 * tickflow SDK: the one header a plugin includes. See plugin.h for the descriptor and option
 * table, host.h for the services the runtime offers, docs/plugin-sdk.md for a walk-through.
 */
#ifndef TICKFLOW_H
#define TICKFLOW_H

#include <tickflow/version.h>
#include "plugin.h"
#include "host.h"

#endif
