/* persist_import.c - persist files read into the store (import). */
#include <errno.h>

#include "core/persist.h"
