/* test_pyjson.c - see tests/meson.build. */
#include <criterion/criterion.h>

#include "core/pyjson.h"
