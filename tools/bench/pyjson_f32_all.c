/* pyjson_f32_all.c - pyj_fmt_f32 checked on every float32 bit pattern. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pyjson.h"

/*
 * usage: pyjson_f32_all [-j THREADS] [FIRST LAST]
 *        pyjson_f32_all [-j THREADS] --f64 COUNT [SEED]
 *
 * For every positive finite pattern u in [FIRST, LAST] (default all,
 * 0x00000001..0x7f7fffff), with f its float and s = pyj_fmt_f32(f) of n
 * significant digits:
 *   1. strtof(s) is f (it reads back);
 *   2. no decimal of n - 1 digits reads back to f: neither glibc's
 *      correctly rounded "%.*e" of n - 1 digits nor its two neighbours
 *      (any decimal of that length inside f's rounding interval would
 *      make one of these three read back);
 *   3. s has the digits of the correctly rounded "%.*e" of n digits if
 *      that reads back (it is the nearest of n digits), else of the one
 *      neighbour that does;
 *   4. the layout is repr()'s: exponent form exactly when the exponent is
 *      below -4 or 16 and above, "e-05" style exponents, ".0" after an
 *      integer;
 *   5. pyj_fmt_f32(-f) is "-" followed by s.
 * Then the zeros, infinities and every NaN pattern (0x7f800001..0x7fffffff
 * and their negatives).  Prints the first failures and the count; exit
 * status 1 if any.  Takes about half an hour on two cores; not run by
 * tools/check.
 *
 * --f64 checks pyj_fmt_f64 the same way (17 digits at most, strtod) on
 * COUNT random double bit patterns (xorshift from SEED): the first
 * quarter of every exponent alike, then half near 1 (|exponent| < 64),
 * then all subnormal and normal patterns counting up from 1 and down
 * from DBL_MAX; and first every power of 2 with its two neighbours.
 */

struct fa_job {
	uint32_t first, last;
	uint64_t bad, done;
	char first_bad[8][96];
	int nbad_kept;
};

/*
 * The decimal of p digits just below m 10^e (m of p digits): at the
 * bottom of a decade it is 99..9 10^(e-1).  (Just above, m + 1 is right
 * even at the top: 10^p 10^e is 10^(p-1) 10^(e+1).)
 */
static void fa_prev(unsigned long long *m, int *e, int p)
{
	unsigned long long low = 1;

	for (int i = 1; i < p; i++)
		low *= 10;
	if (*m == low) {
		*m = low * 10 - 1;
		(*e)--;
	} else {
		(*m)--;
	}
}

static float fa_dec(unsigned long long m, int e)
{
	char t[48];

	snprintf(t, sizeof(t), "%llue%d", m, e);
	return strtof(t, NULL);
}

/* "%.*e" of p digits: significand and exponent of its last digit. */
static void fa_rounded(float a, int p, unsigned long long *m, int *e)
{
	char t[48], *s;
	unsigned long long v = 0;

	snprintf(t, sizeof(t), "%.*e", p - 1, (double)a);
	for (s = t; *s != 'e'; s++)
		if (*s != '.')
			v = v * 10 + (unsigned)(*s - '0');
	*m = v;
	*e = atoi(s + 1) - (p - 1);
}

/* Digits of s (a positive repr) as significand/exponent, layout checked. */
static bool fa_parse(const char *s, unsigned long long *m, int *e, int *nd)
{
	unsigned long long v = 0;
	int n = 0, frac = -1, ex = 0, x;
	bool lead = true, has_e = false;
	const char *p;

	for (p = s; *p && *p != 'e'; p++) {
		if (*p == '.') {
			frac = 0;
			continue;
		}
		if (*p < '0' || *p > '9')
			return false;
		if (frac >= 0)
			frac++;
		if (lead && *p == '0')
			continue;
		lead = false;
		v = v * 10 + (unsigned)(*p - '0');
		n++;
	}
	if (*p == 'e') {
		has_e = true;
		if ((p[1] != '-' && p[1] != '+') || strlen(p + 2) < 2 ||
		    (strlen(p + 2) > 2 && p[2] == '0'))
			return false;
		ex = atoi(p + 1);
	}
	*e = ex - (frac > 0 ? frac : 0);
	while (v && v % 10 == 0) {
		v /= 10;
		n--;
		(*e)++;
	}
	*m = v;
	*nd = n;
	/* layout: x is the first digit's exponent */
	x = *e + n - 1;
	if (has_e != (x < -4 || x >= 16))
		return false;
	if (has_e) /* "d" or "d.ddd", no trailing zero */
		return s[1] == 'e' || (s[1] == '.' && p[-1] != '0' && n > 1);
	/* positional: a point with a digit on each side, and no trailing
	 * zero after the point but a lone ".0" */
	if (frac < 1)
		return false;
	if (frac > 1 && p[-1] == '0')
		return false;
	return true;
}

static double fa_dec_d(unsigned long long m, int e)
{
	char t[48];

	snprintf(t, sizeof(t), "%llue%d", m, e);
	return strtod(t, NULL);
}

static void fa_rounded_d(double a, int p, unsigned long long *m, int *e)
{
	char t[48], *s;
	unsigned long long v = 0;

	snprintf(t, sizeof(t), "%.*e", p - 1, a);
	for (s = t; *s != 'e'; s++)
		if (*s != '.')
			v = v * 10 + (unsigned)(*s - '0');
	*m = v;
	*e = atoi(s + 1) - (p - 1);
}

static void fa_fail(struct fa_job *j, uint32_t u, const char *s,
		    const char *why)
{
	if (j->nbad_kept < 8)
		snprintf(j->first_bad[j->nbad_kept++], sizeof(j->first_bad[0]),
			 "%08x \"%s\": %s", u, s, why);
	j->bad++;
}

static void *fa_run(void *arg)
{
	struct fa_job *j = arg;

	for (uint64_t v = j->first; v <= j->last; v++) {
		uint32_t u = (uint32_t)v, un = u | 0x80000000u;
		unsigned long long m, cm;
		char s[PYJ_NUM_MAX], sn[PYJ_NUM_MAX];
		int e, ce, nd;
		float f, fn;

		memcpy(&f, &u, 4);
		memcpy(&fn, &un, 4);
		pyj_fmt_f32(s, f);
		pyj_fmt_f32(sn, fn);
		j->done++;
		if (sn[0] != '-' || strcmp(sn + 1, s)) {
			fa_fail(j, u, sn, "negative is not - and the positive");
			continue;
		}
		if (strtof(s, NULL) != f) {
			fa_fail(j, u, s, "does not read back");
			continue;
		}
		if (!fa_parse(s, &m, &e, &nd)) {
			fa_fail(j, u, s, "not repr's layout");
			continue;
		}
		if (nd > 1) {
			unsigned long long pm;
			int pe;

			fa_rounded(f, nd - 1, &cm, &ce);
			pm = cm;
			pe = ce;
			fa_prev(&pm, &pe, nd - 1);
			if (fa_dec(cm, ce) == f || fa_dec(cm + 1, ce) == f ||
			    fa_dec(pm, pe) == f) {
				fa_fail(j, u, s, "not the shortest");
				continue;
			}
		}
		fa_rounded(f, nd, &cm, &ce);
		if (fa_dec(cm, ce) < f)
			cm++;
		else if (fa_dec(cm, ce) > f)
			fa_prev(&cm, &ce, nd);
		while (cm % 10 == 0) {
			cm /= 10;
			ce++;
		}
		if (cm != m || ce != e) {
			fa_fail(j, u, s, "not the nearest");
			continue;
		}
	}
	return NULL;
}

/* The checks of fa_run for one positive finite double: NULL or why not. */
static const char *fa_check_d(double f, char *s)
{
	unsigned long long m, cm;
	char sn[PYJ_NUM_MAX];
	int e, ce, nd;

	pyj_fmt_f64(s, f);
	pyj_fmt_f64(sn, -f);
	if (sn[0] != '-' || strcmp(sn + 1, s))
		return "negative is not - and the positive";
	if (strtod(s, NULL) != f)
		return "does not read back";
	if (!fa_parse(s, &m, &e, &nd))
		return "not repr's layout";
	if (nd > 1) {
		unsigned long long pm;
		int pe;

		fa_rounded_d(f, nd - 1, &cm, &ce);
		pm = cm;
		pe = ce;
		fa_prev(&pm, &pe, nd - 1);
		if (fa_dec_d(cm, ce) == f || fa_dec_d(cm + 1, ce) == f ||
		    fa_dec_d(pm, pe) == f)
			return "not the shortest";
	}
	fa_rounded_d(f, nd, &cm, &ce);
	if (fa_dec_d(cm, ce) < f)
		cm++;
	else if (fa_dec_d(cm, ce) > f)
		fa_prev(&cm, &ce, nd);
	while (cm % 10 == 0) {
		cm /= 10;
		ce++;
	}
	if (cm != m || ce != e)
		return "not the nearest";
	return NULL;
}

struct fa_djob {
	uint64_t count, seed, bad, done;
	int part, parts;
	char first_bad[8][96];
	int nbad_kept;
};

static void *fa_run_d(void *arg)
{
	struct fa_djob *j = arg;
	uint64_t x =
		j->seed * 2 + 1 + (uint64_t)j->part * 0x9e3779b97f4a7c15ull;

	for (uint64_t i = (uint64_t)j->part; i < j->count;
	     i += (uint64_t)j->parts) {
		uint64_t u;
		const char *why;
		char s[PYJ_NUM_MAX];
		double f;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (i < j->count / 4) {
			u = x & ~(1ull << 63);
		} else if (i < j->count / 4 * 3) {
			u = (x & ((1ull << 52) - 1)) |
			    ((1023 + x % 127 - 63) << 52);
		} else if (i % 2) {
			u = (i - j->count / 4 * 3) / 2 + 1;
		} else {
			u = 0x7fefffffffffffffull - (i - j->count / 4 * 3) / 2;
		}
		memcpy(&f, &u, 8);
		if (!isfinite(f) || f == 0)
			continue;
		j->done++;
		why = fa_check_d(f, s);
		if (why) {
			if (j->nbad_kept < 8)
				snprintf(j->first_bad[j->nbad_kept++],
					 sizeof(j->first_bad[0]),
					 "%016llx \"%s\": %s",
					 (unsigned long long)u, s, why);
			j->bad++;
		}
	}
	return NULL;
}

static int fa_main_d(int threads, uint64_t count, uint64_t seed)
{
	struct fa_djob *jobs = calloc((size_t)threads, sizeof(*jobs));
	pthread_t *tid = calloc((size_t)threads, sizeof(*tid));
	uint64_t bad = 0, done = 0;
	time_t t0 = time(NULL);

	if (!jobs || !tid)
		return 1;
	/* every power of 2 (a narrower interval below) and its neighbours */
	for (int e = -1074; e <= 1023; e++) {
		double p = ldexp(1.0, e);
		double around[3] = { nextafter(p, 0), p,
				     nextafter(p, INFINITY) };

		for (int i = 0; i < 3; i++) {
			char s[PYJ_NUM_MAX];
			const char *why;

			if (!isfinite(around[i]) || around[i] == 0)
				continue;
			done++;
			why = fa_check_d(around[i], s);
			if (why) {
				printf("%a \"%s\": %s\n", around[i], s, why);
				bad++;
			}
		}
	}
	for (int t = 0; t < threads; t++) {
		jobs[t].count = count;
		jobs[t].seed = seed;
		jobs[t].part = t;
		jobs[t].parts = threads;
		pthread_create(&tid[t], NULL, fa_run_d, &jobs[t]);
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(tid[t], NULL);
		bad += jobs[t].bad;
		done += jobs[t].done;
		for (int k = 0; k < jobs[t].nbad_kept; k++)
			printf("%s\n", jobs[t].first_bad[k]);
	}
	printf("pyjson_f32_all --f64: %llu doubles (seed %llu) and their "
	       "negatives checked, %llu failures, %ld s\n",
	       (unsigned long long)done, (unsigned long long)seed,
	       (unsigned long long)bad, (long)(time(NULL) - t0));
	free(jobs);
	free(tid);
	return bad ? 1 : 0;
}

static int fa_specials(void)
{
	static const struct {
		uint32_t u;
		const char *s;
	} fixed[] = {
		{ 0, "0.0" },
		{ 0x80000000u, "-0.0" },
		{ 0x7f800000u, "Infinity" },
		{ 0xff800000u, "-Infinity" },
	};
	char s[PYJ_NUM_MAX];
	int bad = 0;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		float f;

		memcpy(&f, &fixed[i].u, 4);
		pyj_fmt_f32(s, f);
		if (strcmp(s, fixed[i].s)) {
			printf("%08x \"%s\": expected %s\n", fixed[i].u, s,
			       fixed[i].s);
			bad++;
		}
	}
	for (uint32_t u = 0x7f800001u; u <= 0x7fffffffu; u++) {
		uint32_t un = u | 0x80000000u;
		float f, fn;

		memcpy(&f, &u, 4);
		memcpy(&fn, &un, 4);
		pyj_fmt_f32(s, f);
		if (strcmp(s, "NaN"))
			bad++;
		pyj_fmt_f32(s, fn);
		if (strcmp(s, "NaN"))
			bad++;
	}
	return bad;
}

int main(int argc, char **argv)
{
	uint32_t first = 1, last = 0x7f7fffffu;
	int threads = 2, nargs = 0;
	struct fa_job *jobs;
	pthread_t *tid;
	uint64_t bad = 0, done = 0;
	time_t t0 = time(NULL);

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-j") && i + 1 < argc) {
			threads = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--f64") && i + 1 < argc) {
			uint64_t count = strtoull(argv[++i], NULL, 0);
			uint64_t seed =
				i + 1 < argc ? strtoull(argv[++i], NULL, 0) : 1;

			return threads < 1 ? 2
					   : fa_main_d(threads, count, seed);
		} else if (nargs < 2) {
			unsigned long v = strtoul(argv[i], NULL, 0);

			if (nargs++ == 0)
				first = (uint32_t)v;
			else
				last = (uint32_t)v;
		} else {
			fprintf(stderr,
				"usage: %s [-j THREADS] [FIRST LAST]\n"
				"       %s [-j THREADS] --f64 COUNT [SEED]\n",
				argv[0], argv[0]);
			return 2;
		}
	}
	if (threads < 1 || first < 1 || last > 0x7f7fffffu || first > last)
		return 2;
	jobs = calloc((size_t)threads, sizeof(*jobs));
	tid = calloc((size_t)threads, sizeof(*tid));
	if (!jobs || !tid)
		return 1;
	/* interleaved slices of 2^20, so that every thread meets every
	 * exponent and the work is even */
	for (uint64_t lo = first, round = 0; lo <= last; round++) {
		for (int t = 0; t < threads && lo <= last; t++) {
			uint64_t hi = lo + (1u << 20) - 1;

			if (hi > last)
				hi = last;
			jobs[t].first = (uint32_t)lo;
			jobs[t].last = (uint32_t)hi;
			pthread_create(&tid[t], NULL, fa_run, &jobs[t]);
			lo = hi + 1;
		}
		for (int t = 0; t < threads; t++) {
			if (!jobs[t].last)
				continue;
			pthread_join(tid[t], NULL);
			jobs[t].last = 0;
		}
		if (round % 64 == 63)
			fprintf(stderr, "at %08llx after %ld s\n",
				(unsigned long long)lo,
				(long)(time(NULL) - t0));
	}
	for (int t = 0; t < threads; t++) {
		bad += jobs[t].bad;
		done += jobs[t].done;
		for (int k = 0; k < jobs[t].nbad_kept; k++)
			printf("%s\n", jobs[t].first_bad[k]);
	}
	if (first == 1 && last == 0x7f7fffffu)
		bad += (uint64_t)fa_specials();
	printf("pyjson_f32_all: %llu positive patterns [%08x, %08x] and "
	       "their negatives checked, %llu failures, %ld s\n",
	       (unsigned long long)done, first, last, (unsigned long long)bad,
	       (long)(time(NULL) - t0));
	return bad ? 1 : 0;
}
