/* pyjson.c - benchmark: float32 to and from JSON text, against anchors. */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/pyjson.h"

/*
 * usage: bench_pyjson [-n FLOATS] [-r RUNS] [--no-python]
 *
 * FLOATS (default 4,000,000) float32 values shaped like the components
 * of normalised embeddings (Gaussian, sigma 0.05, a few larger), each
 * run RUNS (default 5) times; the median is printed, in ns per float,
 * with the ratio to the anchor:
 *
 *   format  pyj_f32 into a pyj_out, ", " between values, as
 *           persist_export writes a vector; anchor: snprintf "%.9g" (9
 *           significant digits always read back, but are not the
 *           shortest) into the same kind of buffer.
 *   parse   pyj_parse_f32 of each number's text, against strtof of the
 *           same text (NUL-terminated in place), on two texts: what
 *           Python writes for a float32 held as a Python float (repr of
 *           the double: up to 17 digits, "0.012345678918254375"), and
 *           what pyj_f32 writes ("0.012345679").
 *   read    the reader (pyj_next) over Python's text with
 *           pyj_parse_f32 of each number: the import of a vector file.
 *   f64     pyj_f64 of each value as a double (how Python's text is
 *           made here; one run).
 *   value   pyj_value of 20,000 docstore values (compact, as the engine
 *           holds them) against Python's json.dumps(json.loads(v)) of
 *           each, timed in /usr/bin/python3.
 *   python  /usr/bin/python3 json.dumps of the same values as a list of
 *           Python floats, and json.loads of that text (C accelerated
 *           json module), timed inside the interpreter with
 *           time.perf_counter, median of RUNS.  --no-python skips it.
 *
 * Times are per thread CPU time (CLOCK_THREAD_CPUTIME_ID), steadier than
 * wall clock on a shared machine; Python's are perf_counter (wall).
 * Checks on the way that every parse gives back the float it came from.
 * Build with buildtype=release.
 */

#define BP_PYTHON "/usr/bin/python3"

static double bp_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t bp_rng(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Gaussian (Box-Muller) */
static double bp_gauss(uint64_t *s)
{
	double u1 = ((double)(bp_rng(s) >> 11) + 1) / 9007199254740993.0;
	double u2 = (double)(bp_rng(s) >> 11) / 9007199254740992.0;

	return sqrt(-2 * log(u1)) * cos(2 * M_PI * u2);
}

static int bp_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double bp_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), bp_cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Numbers of an array text: starts (into text, NUL put after each). */
struct bp_nums {
	char *text;
	size_t len;
	char **at;
	size_t *n;
};

static void bp_split(struct bp_nums *b, size_t count)
{
	size_t i = 0;
	char *p = b->text + 1;

	b->at = malloc(count * sizeof(*b->at));
	b->n = malloc(count * sizeof(*b->n));
	if (!b->at || !b->n) {
		perror("malloc");
		exit(1);
	}
	while (i < count) {
		char *q = p;

		while (*q != ',' && *q != ']')
			q++;
		b->at[i] = p;
		b->n[i] = (size_t)(q - p);
		*q = 0; /* strtof needs the end marked */
		i++;
		p = q + 2;
	}
}

static volatile float bp_sink;

static double bp_parse_ours(const struct bp_nums *b, size_t count,
			    const float *want)
{
	double t0 = bp_now();
	float acc = 0;

	for (size_t i = 0; i < count; i++) {
		float f;

		if (pyj_parse_f32(b->at[i], b->n[i], &f)) {
			fprintf(stderr, "parse failed: %s\n", b->at[i]);
			exit(1);
		}
		acc += f;
	}
	t0 = bp_now() - t0;
	bp_sink = acc;
	for (size_t i = 0; i < count; i++) {
		float f;

		pyj_parse_f32(b->at[i], b->n[i], &f);
		if (f != want[i]) {
			fprintf(stderr, "parse gives %a, not %a: %s\n",
				(double)f, (double)want[i], b->at[i]);
			exit(1);
		}
	}
	return t0;
}

static double bp_parse_strtof(const struct bp_nums *b, size_t count)
{
	double t0 = bp_now();
	float acc = 0;

	for (size_t i = 0; i < count; i++)
		acc += strtof(b->at[i], NULL);
	bp_sink = acc;
	return bp_now() - t0;
}

/* Text of the array as ours writes it (f32) or as Python does (f64). */
static struct bp_nums bp_text(const float *v, size_t count, bool f64)
{
	struct pyj_out o;
	struct bp_nums b;

	if (pyj_out_init(&o, NULL, NULL)) {
		perror("pyj_out_init");
		exit(1);
	}
	pyj_lit(&o, "[");
	for (size_t i = 0; i < count; i++) {
		if (i)
			pyj_lit(&o, ", ");
		if (f64)
			pyj_f64(&o, (double)v[i]);
		else
			pyj_f32(&o, v[i]);
	}
	pyj_lit(&o, "]");
	if (o.err) {
		fprintf(stderr, "pyj_out: %s\n", strerror(-o.err));
		exit(1);
	}
	b.text = malloc(o.len + 1);
	memcpy(b.text, o.buf, o.len);
	b.text[o.len] = 0;
	b.len = o.len;
	pyj_out_finish(&o);
	return b;
}

/* Python's json.dumps / json.loads of the list in `path`: ns per float. */
static int bp_python(const char *path, size_t count, int runs, double *dumps,
		     double *loads)
{
	static const char script[] =
		"import json, statistics, sys, time\n"
		"text = open(sys.argv[1]).read()\n"
		"runs = int(sys.argv[2])\n"
		"lst = json.loads(text)\n"
		"td, tl = [], []\n"
		"for _ in range(runs):\n"
		"    t = time.perf_counter(); s = json.dumps(lst); "
		"td.append(time.perf_counter() - t)\n"
		"    t = time.perf_counter(); json.loads(text); "
		"tl.append(time.perf_counter() - t)\n"
		"assert s == text\n"
		"print(statistics.median(td), statistics.median(tl))\n";
	char cmd[4200], runs_s[16];
	FILE *p;
	int rc;

	snprintf(runs_s, sizeof(runs_s), "%d", runs);
	snprintf(cmd, sizeof(cmd), "%s -c '%s' %s %s", BP_PYTHON, script, path,
		 runs_s);
	p = popen(cmd, "r");
	if (!p)
		return -errno;
	rc = fscanf(p, "%lf %lf", dumps, loads);
	if (pclose(p) != 0 || rc != 2)
		return -EIO;
	*dumps = *dumps / (double)count * 1e9;
	*loads = *loads / (double)count * 1e9;
	return 0;
}

/*
 * NODES docstore values as the engine holds them (compact, as jansson
 * writes: raw UTF-8, no spaces), LlamaIndex TextNodes of ~1.5 KB with a
 * few non-ASCII characters and escapes: one text, values separated by
 * NUL, their starts in *at.
 */
static char *bp_nodes(size_t nodes, size_t **at, size_t *total)
{
	static const char *const words[] = {
		"storage",
		"context",
		"vector",
		"index",
		"caf\xc3\xa9",
		"query",
		"node",
		"the",
		"of",
		"na\xc3\xafve",
		"and",
		"a",
		"\\n",
		"\\\"q\\\"",
		"\\u00e9t\\u00e9",
		"r\xc3\xa9sum\xc3\xa9",
	};
	char *t = malloc(nodes * 2048);
	uint64_t seed = 12345;
	size_t n = 0;

	*at = malloc((nodes + 1) * sizeof(**at));
	if (!t || !*at) {
		perror("malloc");
		exit(1);
	}
	for (size_t i = 0; i < nodes; i++) {
		(*at)[i] = n;
		n += (size_t)sprintf(
			t + n,
			"{\"__data__\":{\"id_\":\"node-%08zu\",\"embedding\":"
			"null,"
			"\"metadata\":{\"file_name\":\"doc-%06zu.txt\","
			"\"score\":0.%zu5},\"excluded_embed_metadata_keys\":[],"
			"\"relationships\":{\"1\":{\"node_id\":\"doc-%06zu\","
			"\"node_type\":\"4\",\"metadata\":{}}},\"text\":\"",
			i, i / 10, i % 97, i / 10);
		for (int w = 0; w < 160; w++)
			n += (size_t)sprintf(t + n, "%s%s", w ? " " : "",
					     words[bp_rng(&seed) % 16]);
		n += (size_t)sprintf(t + n,
				     "\",\"start_char_idx\":0,\"end_char_idx\":"
				     "%zu,\"class_name\":\"TextNode\"},"
				     "\"__type__\":\"1\"}",
				     i * 7);
		t[n++] = 0;
	}
	(*at)[nodes] = n;
	*total = n;
	return t;
}

/* Python's json.dumps(json.loads(v)) of each value: ns per value. */
static int bp_python_values(const char *path, int runs, double *per)
{
	static const char script[] =
		"import json, statistics, sys, time\n"
		"vals = open(sys.argv[1], encoding=\"utf-8\").read()"
		".split(chr(0))[:-1]\n"
		"ts = []\n"
		"for _ in range(int(sys.argv[2])):\n"
		"    t = time.perf_counter()\n"
		"    for v in vals: json.dumps(json.loads(v))\n"
		"    ts.append(time.perf_counter() - t)\n"
		"print(statistics.median(ts) / len(vals))\n";
	char cmd[4200];
	FILE *p;
	int rc;

	snprintf(cmd, sizeof(cmd), "%s -c '%s' %s %d", BP_PYTHON, script, path,
		 runs);
	p = popen(cmd, "r");
	if (!p)
		return -errno;
	rc = fscanf(p, "%lf", per);
	if (pclose(p) != 0 || rc != 1)
		return -EIO;
	*per *= 1e9;
	return 0;
}

static void bp_values(int runs, bool python)
{
	size_t nodes = 20000, *at, total;
	char *t = bp_nodes(nodes, &at, &total);
	double *tv = calloc((size_t)runs, sizeof(double)), ours;
	struct pyj_out o;
	size_t out = 0;

	if (!tv || pyj_out_init(&o, NULL, NULL)) {
		perror("malloc");
		exit(1);
	}
	for (int r = 0; r < runs; r++) {
		double t0 = bp_now();

		out = 0;
		for (size_t i = 0; i < nodes; i++) {
			o.len = 0;
			if (pyj_value(&o, t + at[i], at[i + 1] - at[i] - 1)) {
				fprintf(stderr, "pyj_value refused node %zu\n",
					i);
				exit(1);
			}
			out += o.len;
		}
		tv[r] = bp_now() - t0;
	}
	pyj_out_finish(&o);
	ours = bp_median(tv, runs) / (double)nodes * 1e9;
	printf("value   pyj_value %7.0f ns/value (%zu docstore values of "
	       "%.0f bytes, %.0f MB/s in)",
	       ours, nodes, (double)total / (double)nodes,
	       (double)total / bp_median(tv, runs) / 1e6);
	if (python) {
		char path[] = "/tmp/bench_pyjson_XXXXXX";
		int fd = mkstemp(path);
		double py;
		int rc;

		if (fd < 0 || write(fd, t, total) != (ssize_t)total) {
			perror(path);
			exit(1);
		}
		close(fd);
		rc = bp_python_values(path, runs, &py);
		unlink(path);
		if (rc)
			printf("   Python: not run (%s)", strerror(-rc));
		else
			printf("   json.dumps(json.loads()) %7.0f ns/value   "
			       "%.1fx faster",
			       py, py / ours);
	}
	printf("\n");
	(void)out;
	free(tv);
	free(at);
	free(t);
}

int main(int argc, char **argv)
{
	size_t count = 4000000;
	int runs = 5;
	bool python = true;
	double py_dumps = 0, py_loads = 0, t_f64 = 0, *t_read;
	int py_rc = 0;
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	double *t_ours, *t_anchor, *t_p17, *t_s17, *t_p9, *t_s9;
	struct bp_nums b17, b9;
	struct pyj_out o;
	float *v;
	char *abuf;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-n") && i + 1 < argc)
			count = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-python"))
			python = false;
		else {
			fprintf(stderr,
				"usage: %s [-n FLOATS] [-r RUNS] "
				"[--no-python]\n",
				argv[0]);
			return 2;
		}
	}
	if (runs < 1 || count < 1)
		return 2;
	v = malloc(count * sizeof(*v));
	abuf = malloc(count * 24 + 2);
	t_ours = calloc((size_t)runs, sizeof(double));
	t_anchor = calloc((size_t)runs, sizeof(double));
	t_p17 = calloc((size_t)runs, sizeof(double));
	t_s17 = calloc((size_t)runs, sizeof(double));
	t_p9 = calloc((size_t)runs, sizeof(double));
	t_s9 = calloc((size_t)runs, sizeof(double));
	t_read = calloc((size_t)runs, sizeof(double));
	if (!v || !abuf || !t_ours || !t_anchor || !t_p17 || !t_s17 || !t_p9 ||
	    !t_s9 || !t_read) {
		perror("malloc");
		return 1;
	}
	for (size_t i = 0; i < count; i++) {
		double g = bp_gauss(&seed) * 0.05;

		if (i % 97 == 0)
			g *= 8;
		v[i] = (float)g;
	}
	printf("bench_pyjson: %zu float32 values, median of %d runs\n", count,
	       runs);

	/* format */
	if (pyj_out_init(&o, NULL, NULL)) {
		perror("pyj_out_init");
		return 1;
	}
	for (int r = 0; r < runs; r++) {
		double t0;
		size_t n = 0;

		o.len = 0;
		t0 = bp_now();
		pyj_raw(&o, "[", 1);
		for (size_t i = 0; i < count; i++) {
			if (i)
				pyj_raw(&o, ", ", 2);
			pyj_f32(&o, v[i]);
		}
		pyj_raw(&o, "]", 1);
		t_ours[r] = bp_now() - t0;

		t0 = bp_now();
		abuf[n++] = '[';
		for (size_t i = 0; i < count; i++) {
			if (i) {
				abuf[n++] = ',';
				abuf[n++] = ' ';
			}
			n += (size_t)snprintf(abuf + n, 24, "%.9g",
					      (double)v[i]);
		}
		abuf[n++] = ']';
		t_anchor[r] = bp_now() - t0;
	}
	{
		double ours = bp_median(t_ours, runs) / (double)count * 1e9;
		double anc = bp_median(t_anchor, runs) / (double)count * 1e9;

		printf("format  pyj_f32 %7.1f ns/float   snprintf %%.9g %7.1f "
		       "ns/float   %.1fx faster (%.2f MB of text)\n",
		       ours, anc, anc / ours, (double)o.len / 1e6);
	}
	pyj_out_finish(&o);

	/* parse */
	{
		double t0 = bp_now();

		b17 = bp_text(v, count, true);
		t_f64 = (bp_now() - t0) / (double)count * 1e9;
	}
	/* the import path: the reader's tokens and pyj_parse_f32 */
	for (int r = 0; r < runs; r++) {
		struct pyj_in in;
		enum pyj_tok tok;
		size_t i = 0;
		double t0 = bp_now();
		float acc = 0;

		pyj_in_init(&in, b17.text, b17.len);
		while ((tok = pyj_next(&in)) > PYJ_EOF) {
			float f;

			if (tok != PYJ_NUM)
				continue;
			if (pyj_parse_f32(in.str, in.slen, &f) || f != v[i++]) {
				fprintf(stderr, "reader: %s\n", in.err);
				return 1;
			}
			acc += f;
		}
		t_read[r] = bp_now() - t0;
		bp_sink = acc;
		if (tok != PYJ_EOF || i != count) {
			fprintf(stderr, "reader: %s\n", in.err);
			return 1;
		}
		pyj_in_free(&in);
	}
	if (python) {
		/* Python reads the same text (before bp_split cuts it) */
		char path[] = "/tmp/bench_pyjson_XXXXXX";
		int fd = mkstemp(path);
		double d, l;
		int rc;

		if (fd < 0 ||
		    write(fd, b17.text, b17.len) != (ssize_t)b17.len) {
			perror(path);
			return 1;
		}
		close(fd);
		rc = bp_python(path, count, runs, &d, &l);
		unlink(path);
		py_rc = rc;
		py_dumps = d;
		py_loads = l;
	}
	b9 = bp_text(v, count, false);
	bp_split(&b17, count);
	bp_split(&b9, count);
	for (int r = 0; r < runs; r++) {
		t_p17[r] = bp_parse_ours(&b17, count, v);
		t_s17[r] = bp_parse_strtof(&b17, count);
		t_p9[r] = bp_parse_ours(&b9, count, v);
		t_s9[r] = bp_parse_strtof(&b9, count);
	}
	{
		double p17 = bp_median(t_p17, runs) / (double)count * 1e9;
		double s17 = bp_median(t_s17, runs) / (double)count * 1e9;
		double p9 = bp_median(t_p9, runs) / (double)count * 1e9;
		double s9 = bp_median(t_s9, runs) / (double)count * 1e9;

		printf("parse   pyj_parse_f32 %7.1f ns/float   strtof %7.1f "
		       "ns/float   %.1fx faster (Python's repr, "
		       "\"%s\")\n",
		       p17, s17, s17 / p17, b17.at[0]);
		printf("parse   pyj_parse_f32 %7.1f ns/float   strtof %7.1f "
		       "ns/float   %.1fx faster (pyj_f32's, \"%s\")\n",
		       p9, s9, s9 / p9, b9.at[0]);
		printf("read    pyj_next + pyj_parse_f32 %7.1f ns/float "
		       "(Python's text, %.1f MB/s)\n",
		       bp_median(t_read, runs) / (double)count * 1e9,
		       (double)b17.len / bp_median(t_read, runs) / 1e6);
		printf("f64     pyj_f64 %7.1f ns/float (repr of the float32's "
		       "double; one run)\n",
		       t_f64);
	}

	bp_values(runs, python);
	if (python && py_rc)
		printf("python  (not run: %s)\n", strerror(-py_rc));
	else if (python)
		printf("python  json.dumps %7.1f ns/float   json.loads %7.1f "
		       "ns/float   (pyj_f32 %.1fx faster than dumps; "
		       "pyj_parse_f32 %.1fx faster than loads)\n",
		       py_dumps, py_loads,
		       py_dumps /
			       (bp_median(t_ours, runs) / (double)count * 1e9),
		       py_loads /
			       (bp_median(t_p17, runs) / (double)count * 1e9));
	free(b17.text);
	free(b17.at);
	free(b17.n);
	free(b9.text);
	free(b9.at);
	free(b9.n);
	free(v);
	free(abuf);
	free(t_ours);
	free(t_anchor);
	free(t_p17);
	free(t_s17);
	free(t_p9);
	free(t_s9);
	free(t_read);
	return 0;
}
