/* pyjson.c - JSON as Python's json.dumps writes it, and a fast reader. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/pyjson.h"

/* Not written yet: every entry point fails. */
int pyj_out_init(struct pyj_out *o, pyj_write_fn *write, void *arg)
{
	memset(o, 0, sizeof(*o));
	o->write = write;
	o->arg = arg;
	o->err = -ENOSYS;
	return -ENOSYS;
}
