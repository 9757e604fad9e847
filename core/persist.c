/* persist.c - persist files generated from the store (export). */
#include <errno.h>

#include "core/persist.h"
