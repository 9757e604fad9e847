/* test_persist.c - see tests/meson.build. */
#include <criterion/criterion.h>

#include "core/persist.h"
