/* pyjson_num.c - numbers as repr() writes them, and read back exactly. */
#include <errno.h>
#include <math.h>

#include <stdlib.h>
#include <string.h>

#include "core/pyjson_int.h"
#include "core/pyjson_pow10.h"

/* --- numbers out ---------------------------------------------------------- */

static const char pyj_digits2[201] = "00010203040506070809"
				     "10111213141516171819"
				     "20212223242526272829"
				     "30313233343536373839"
				     "40414243444546474849"
				     "50515253545556575859"
				     "60616263646566676869"
				     "70717273747576777879"
				     "80818283848586878889"
				     "90919293949596979899";

/* Number of decimal digits of d (1..20). */
static inline int pyj_ndigits(uint64_t d)
{
	int n = 1;

	while (d >= 10000) {
		d /= 10000;
		n += 4;
	}
	while (d >= 10) {
		d /= 10;
		n++;
	}
	return n;
}

/* The n digits of d into w (right-aligned in w[0..n)). */
static inline void pyj_put_digits(char *w, uint64_t d, int n)
{
	char *e = w + n;

	while (d >= 100) {
		unsigned r = (unsigned)(d % 100);

		d /= 100;
		e -= 2;
		memcpy(e, pyj_digits2 + 2 * r, 2);
	}
	if (d >= 10) {
		e -= 2;
		memcpy(e, pyj_digits2 + 2 * d, 2);
	} else {
		*--e = (char)('0' + d);
	}
}

/*
 * d * 10^e (d > 0, no trailing zeros required) laid out as repr() does
 * (float_repr_style 'short'): exponent form when the first digit's
 * exponent x is < -4 or >= 16, else positional with at least one digit
 * after the point.  Returns the length; buf is NUL-terminated.
 */
static size_t pyj_layout(char *buf, bool neg, uint64_t d, int e)
{
	char digs[24];
	char *w = buf;
	int n, x;

	while (d % 10 == 0) {
		d /= 10;
		e++;
	}
	n = pyj_ndigits(d);
	pyj_put_digits(digs, d, n);
	x = e + n - 1;
	if (neg)
		*w++ = '-';
	if (x < -4 || x >= 16) {
		unsigned ax = (unsigned)(x < 0 ? -x : x);

		*w++ = digs[0];
		if (n > 1) {
			*w++ = '.';
			memcpy(w, digs + 1, (size_t)n - 1);
			w += n - 1;
		}
		*w++ = 'e';
		*w++ = x < 0 ? '-' : '+';
		if (ax >= 100) {
			*w++ = (char)('0' + ax / 100);
			ax %= 100;
		}
		memcpy(w, pyj_digits2 + 2 * ax, 2);
		w += 2;
	} else if (x >= 0) {
		if (n > x + 1) {
			memcpy(w, digs, (size_t)x + 1);
			w += x + 1;
			*w++ = '.';
			memcpy(w, digs + x + 1, (size_t)(n - x - 1));
			w += n - x - 1;
		} else {
			memcpy(w, digs, (size_t)n);
			w += n;
			memset(w, '0', (size_t)(x + 1 - n));
			w += x + 1 - n;
			*w++ = '.';
			*w++ = '0';
		}
	} else {
		*w++ = '0';
		*w++ = '.';
		memset(w, '0', (size_t)(-x - 1));
		w += -x - 1;
		memcpy(w, digs, (size_t)n);
		w += n;
	}
	*w = 0;
	return (size_t)(w - buf);
}

/* pyj_layout for float32's digits (fewer than 2^32), faster. */
static inline size_t pyj_layout32(char *buf, bool neg, uint32_t d, int e)
{
	char *w = buf;
	int n, x;

	while (d % 10 == 0) {
		d /= 10;
		e++;
	}
	n = d < 100000	     ? (d < 100	    ? (d < 10 ? 1 : 2)
				: d < 1000  ? 3
				: d < 10000 ? 4
					    : 5)
	    : d < 10000000   ? (d < 1000000 ? 6 : 7)
	    : d < 100000000  ? 8
	    : d < 1000000000 ? 9
			     : 10;
	x = e + n - 1;
	*w = '-';
	w += neg;
	if (x < 0 && x >= -4) {
		/* the usual case of vectors: 0.0ddd */
		memcpy(w, "0.0000", 6);
		w += 1 - x;
		pyj_put_digits(w, d, n);
		w += n;
	} else if (x >= 0 && x < 16) {
		pyj_put_digits(w, d, n);
		if (n > x + 1) {
			memmove(w + x + 2, w + x + 1, (size_t)(n - x - 1));
			w[x + 1] = '.';
			w += n + 1;
		} else {
			w += n;
			memset(w, '0', (size_t)(x + 1 - n));
			w += x + 1 - n;
			memcpy(w, ".0", 2);
			w += 2;
		}
	} else {
		unsigned ax = (unsigned)(x < 0 ? -x : x);

		pyj_put_digits(w + 1, d, n);
		w[0] = w[1];
		if (n > 1) {
			w[1] = '.';
			w += n + 1;
		} else {
			w += 1;
		}
		*w++ = 'e';
		*w++ = x < 0 ? '-' : '+';
		memcpy(w, pyj_digits2 + 2 * ax, 2); /* |x| <= 45 */
		w += 2;
	}
	*w = 0;
	return (size_t)(w - buf);
}

static size_t pyj_special(char *buf, double d)
{
	const char *s;

	if (isnan(d))
		s = "NaN";
	else if (isinf(d))
		s = d < 0 ? "-Infinity" : "Infinity";
	else
		s = signbit(d) ? "-0.0" : "0.0";
	strcpy(buf, s);
	return strlen(s);
}

void pyj_f64(struct pyj_out *o, double d)
{
	char b[PYJ_NUM_MAX];

	pyj_raw(o, b, pyj_fmt_f64(b, d));
}

/*
 * float32: the shortest decimal in the rounding interval of f, nearest f
 * among those, after Giulietti's Schubfach.  f = c 2^q; the interval is
 * (c -+ 1/2) 2^q, or (c - 1/4, c + 1/2) 2^q where c is a power of 2 above
 * the smallest normal, bounds included when c is even (strtof rounds a
 * tie to even).  k is chosen so that the interval, scaled by 10^-k, is 1
 * to 10 wide: it holds one or two integers, and at most one multiple of
 * 10.  The bounds and f scaled by 4 10^-k come from one 64x64-bit product
 * each, rounded to odd (see pyj_rop), which keeps every comparison with
 * an even integer exact.  tools/bench/pyjson_f32_all checks all 2^32
 * patterns against strtof and the correctly rounded "%.*e".
 */
/* BEGIN tools/pyjson_tables.py */
#define PYJ_F32_KMIN (-45)
#define PYJ_F32_KMAX 31
/* g for k = PYJ_F32_KMIN.. : ceil(10^-k * 2^(63 - b)) */
static const uint64_t pyj_f32_g[] = {
	0xb35dbf821ae4f38cull, /* -45 */
	0x8f7e32ce7bea5c70ull, /* -44 */
	0xe596b7b0c643c71aull, /* -43 */
	0xb7abc627050305aeull, /* -42 */
	0x92efd1b8d0cf37bfull, /* -41 */
	0xeb194f8e1ae525feull, /* -40 */
	0xbc143fa4e250eb32ull, /* -39 */
	0x96769950b50d88f5ull, /* -38 */
	0xf0bdc21abb48db21ull, /* -37 */
	0xc097ce7bc90715b4ull, /* -36 */
	0x9a130b963a6c115dull, /* -35 */
	0xf684df56c3e01bc7ull, /* -34 */
	0xc5371912364ce306ull, /* -33 */
	0x9dc5ada82b70b59eull, /* -32 */
	0xfc6f7c4045812297ull, /* -31 */
	0xc9f2c9cd04674edfull, /* -30 */
	0xa18f07d736b90be6ull, /* -29 */
	0x813f3978f8940985ull, /* -28 */
	0xcecb8f27f4200f3aull, /* -27 */
	0xa56fa5b99019a5c8ull, /* -26 */
	0x84595161401484a0ull, /* -25 */
	0xd3c21bcecceda100ull, /* -24 */
	0xa968163f0a57b400ull, /* -23 */
	0x878678326eac9000ull, /* -22 */
	0xd8d726b7177a8000ull, /* -21 */
	0xad78ebc5ac620000ull, /* -20 */
	0x8ac7230489e80000ull, /* -19 */
	0xde0b6b3a76400000ull, /* -18 */
	0xb1a2bc2ec5000000ull, /* -17 */
	0x8e1bc9bf04000000ull, /* -16 */
	0xe35fa931a0000000ull, /* -15 */
	0xb5e620f480000000ull, /* -14 */
	0x9184e72a00000000ull, /* -13 */
	0xe8d4a51000000000ull, /* -12 */
	0xba43b74000000000ull, /* -11 */
	0x9502f90000000000ull, /* -10 */
	0xee6b280000000000ull, /* -9 */
	0xbebc200000000000ull, /* -8 */
	0x9896800000000000ull, /* -7 */
	0xf424000000000000ull, /* -6 */
	0xc350000000000000ull, /* -5 */
	0x9c40000000000000ull, /* -4 */
	0xfa00000000000000ull, /* -3 */
	0xc800000000000000ull, /* -2 */
	0xa000000000000000ull, /* -1 */
	0x8000000000000000ull, /* 0 */
	0xcccccccccccccccdull, /* 1 */
	0xa3d70a3d70a3d70bull, /* 2 */
	0x83126e978d4fdf3cull, /* 3 */
	0xd1b71758e219652cull, /* 4 */
	0xa7c5ac471b478424ull, /* 5 */
	0x8637bd05af6c69b6ull, /* 6 */
	0xd6bf94d5e57a42bdull, /* 7 */
	0xabcc77118461cefdull, /* 8 */
	0x89705f4136b4a598ull, /* 9 */
	0xdbe6fecebdedd5bfull, /* 10 */
	0xafebff0bcb24aaffull, /* 11 */
	0x8cbccc096f5088ccull, /* 12 */
	0xe12e13424bb40e14ull, /* 13 */
	0xb424dc35095cd810ull, /* 14 */
	0x901d7cf73ab0acdaull, /* 15 */
	0xe69594bec44de15cull, /* 16 */
	0xb877aa3236a4b44aull, /* 17 */
	0x9392ee8e921d5d08ull, /* 18 */
	0xec1e4a7db69561a6ull, /* 19 */
	0xbce5086492111aebull, /* 20 */
	0x971da05074da7befull, /* 21 */
	0xf1c90080baf72cb2ull, /* 22 */
	0xc16d9a0095928a28ull, /* 23 */
	0x9abe14cd44753b53ull, /* 24 */
	0xf79687aed3eec552ull, /* 25 */
	0xc612062576589ddbull, /* 26 */
	0x9e74d1b791e07e49ull, /* 27 */
	0xfd87b5f28300ca0eull, /* 28 */
	0xcad2f7f5359a3b3full, /* 29 */
	0xa2425ff75e14fc32ull, /* 30 */
	0x81ceb32c4b43fcf5ull, /* 31 */
};
/* END tools/pyjson_tables.py */

__extension__ typedef unsigned __int128 pyj_u128;

/*
 * (g cp) / 2^96 rounded to odd: the integer part, with its lowest bit set
 * if anything was cut.  The product's lowest 64 bits are left out: g's
 * excess over the true power of ten moves them only, so that an exact
 * result stays exact.
 */
static inline uint64_t pyj_rop(uint64_t g, uint64_t cp)
{
	uint64_t hi = (uint64_t)(((pyj_u128)g * cp) >> 64);

	return (hi >> 32) | ((hi & 0xffffffffu) != 0);
}

size_t pyj_fmt_f32(char *buf, float f)
{
	uint32_t bits, frac, ef;
	uint64_t c, cb, g, vb, vbl, vbr, s, sp10, tp10, d, out;
	int q, k, b, sh;
	bool asym, upin, wpin;

	memcpy(&bits, &f, sizeof(bits));
	ef = (bits >> 23) & 0xff;
	frac = bits & 0x7fffff;
	if (ef == 0xff || (ef == 0 && frac == 0))
		return pyj_special(buf, f);
	if (ef) {
		c = frac | (1u << 23);
		q = (int)ef - 150;
	} else {
		c = frac;
		q = -149;
	}
	asym = frac == 0 && ef > 1;
	/* floor(log10(2^q)), floor(log10(3/4 2^q)), floor(-k log2(10)):
	 * checked over the whole range by tools/pyjson_tables.py */
	k = asym ? (q * 78913 - 32745) >> 18 : (q * 78913) >> 18;
	b = (-k * 1741647) >> 19;
	sh = q + b + 33;
	g = pyj_f32_g[k - PYJ_F32_KMIN];
	cb = c << 2;
	out = c & 1;
	vb = pyj_rop(g, cb << sh);
	vbl = pyj_rop(g, (cb - 2 + asym) << sh);
	vbr = pyj_rop(g, (cb + 2) << sh);
	s = vb >> 2;
	/* a multiple of 10 in the interval: one digit fewer, and the only
	 * candidate of its length */
	sp10 = s / 10 * 10;
	tp10 = sp10 + 10;
	upin = vbl + out <= sp10 << 2;
	wpin = (tp10 << 2) + out <= vbr;
	if (upin != wpin) {
		d = upin ? sp10 : tp10;
	} else {
		uint64_t t = s + 1;
		bool uin = vbl + out <= s << 2, win = (t << 2) + out <= vbr;

		if (uin != win) {
			d = uin ? s : t;
		} else {
			/* both: the nearer; a tie to the even one */
			uint64_t mid = (s << 2) + 2;

			d = vb < mid || (vb == mid && !(s & 1)) ? s : t;
		}
	}
	return pyj_layout32(buf, bits >> 31, (uint32_t)d, k);
}

/*
 * (g cp) / 2^127 rounded to odd, g = g1 2^63 + g0 (126 bits), cp < 2^63:
 * as pyj_rop with a sticky window of 63 bits, and the products' lowest
 * bits (where g's excess goes) left out.
 */
static inline uint64_t pyj_rop2(uint64_t g1, uint64_t g0, uint64_t cp)
{
	pyj_u128 x = (pyj_u128)g0 * cp, y = (pyj_u128)g1 * cp;
	uint64_t mask = (1ull << 63) - 1;
	uint64_t z = ((uint64_t)y >> 1) + (uint64_t)(x >> 64);
	uint64_t vb = (uint64_t)(y >> 64) + (z >> 63);

	return vb | (((z & mask) + mask) >> 63);
}

/*
 * repr(float): as pyj_fmt_f32, for doubles (c < 2^53, q from -1074 to
 * 971), with the 126-bit powers of ten of core/pyjson_pow10.h.  Checked
 * against a slow exact reference (printf's correctly rounded digits and
 * strtod) by tests/test_pyjson.c and tools/bench/pyjson_f32_all --f64.
 */
size_t pyj_fmt_f64(char *buf, double d)
{
	uint64_t bits, frac, c, cb, vb, vbl, vbr, s, sp10, tp10, dg, out;
	const uint64_t *g;
	unsigned ef;
	int q, k, b, h;
	bool asym, upin, wpin;

	memcpy(&bits, &d, sizeof(bits));
	ef = (unsigned)(bits >> 52) & 0x7ff;
	frac = bits & ((1ull << 52) - 1);
	if (ef == 0x7ff || (ef == 0 && frac == 0))
		return pyj_special(buf, d);
	if (ef) {
		c = frac | (1ull << 52);
		q = (int)ef - 1075;
	} else {
		c = frac;
		q = -1074;
	}
	asym = frac == 0 && ef > 1;
	/* checked over the whole range by tools/pyjson_tables.py */
	k = asym ? (q * 315653 - 131072) >> 20 : (q * 78913) >> 18;
	b = (-k * 1741647) >> 19;
	h = q + b + 2;
	g = pyj_f64_g[k - PYJ_F64_KMIN];
	cb = c << 2;
	out = c & 1;
	vb = pyj_rop2(g[0], g[1], cb << h);
	vbl = pyj_rop2(g[0], g[1], (cb - 2 + asym) << h);
	vbr = pyj_rop2(g[0], g[1], (cb + 2) << h);
	s = vb >> 2;
	sp10 = s / 10 * 10;
	tp10 = sp10 + 10;
	upin = vbl + out <= sp10 << 2;
	wpin = (tp10 << 2) + out <= vbr;
	if (upin != wpin) {
		dg = upin ? sp10 : tp10;
	} else {
		uint64_t t = s + 1;
		bool uin = vbl + out <= s << 2, win = (t << 2) + out <= vbr;

		if (uin != win) {
			dg = uin ? s : t;
		} else {
			uint64_t mid = (s << 2) + 2;

			dg = vb < mid || (vb == mid && !(s & 1)) ? s : t;
		}
	}
	return pyj_layout(buf, bits >> 63, dg, k);
}

void pyj_f32(struct pyj_out *o, float f)
{
	if (pyj_unlikely(o->cap - o->len < PYJ_NUM_MAX)) {
		if (pyj_room(o, PYJ_NUM_MAX))
			return;
	}
	pyj_put(o, pyj_fmt_f32(o->buf + o->len, f));
}

/* --- numbers in ----------------------------------------------------------- */

/*
 * The end of the JSON number at p (RFC 8259 grammar), or NULL.  *is_int:
 * no fraction or exponent.  Python's -Infinity is not read here.
 */
const char *pyj_scan_number(const char *p, const char *end, int *is_int)
{
	*is_int = 1;
	if (p < end && *p == '-')
		p++;
	if (p >= end)
		return NULL;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	} else {
		return NULL;
	}
	if (p < end && *p == '.') {
		p++;
		*is_int = 0;
		if (p >= end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		*is_int = 0;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	return p;
}

/* NaN, Infinity, -Infinity: 1 and *v, else 0. */
static int pyj_special_text(const char *s, size_t len, double *v)
{
	if (len == 3 && !memcmp(s, "NaN", 3)) {
		*v = NAN;
		return 1;
	}
	if (len == 8 && !memcmp(s, "Infinity", 8)) {
		*v = INFINITY;
		return 1;
	}
	if (len == 9 && !memcmp(s, "-Infinity", 9)) {
		*v = -INFINITY;
		return 1;
	}
	return 0;
}

/* strtod of a number's text (not NUL-terminated). */
double pyj_strtod_n(const char *s, size_t len, int *err)
{
	char small[64], *t = small;
	double v;

	*err = 0;
	if (len >= sizeof(small)) {
		t = malloc(len + 1);
		if (!t) {
			*err = -ENOMEM;
			return 0;
		}
	}
	memcpy(t, s, len);
	t[len] = 0;
	v = strtod(t, NULL);
	if (t != small)
		free(t);
	return v;
}

static float pyj_strtof_n(const char *s, size_t len, int *err)
{
	char small[64], *t = small;
	float v;

	*err = 0;
	if (len >= sizeof(small)) {
		t = malloc(len + 1);
		if (!t) {
			*err = -ENOMEM;
			return 0;
		}
	}
	memcpy(t, s, len);
	t[len] = 0;
	v = strtof(t, NULL);
	if (t != small)
		free(t);
	return v;
}

/* 10^0..10^22: exact as doubles */
static const double pyj_pow10[23] = {
	1e0,  1e1,  1e2,  1e3,	1e4,  1e5,  1e6,  1e7,	1e8,  1e9,  1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* 8 ASCII digits (little-endian load) as their value; 0 tests first. */
static inline uint32_t pyj_parse8(uint64_t w)
{
	w -= PYJ_ONES * '0';
	/* pairs of digits in bytes 0, 2, 4, 6; then 100^3, 100^2, 100, 1 */
	w = (w * 10) + (w >> 8);
	w = (((w & 0x000000ff000000ffull) * (100 + (1000000ull << 32))) +
	     (((w >> 16) & 0x000000ff000000ffull) * (1 + (10000ull << 32)))) >>
	    32;
	return (uint32_t)w;
}

/* 1 if the 8 bytes are all ASCII digits. */
static inline bool pyj_all8digits(uint64_t w)
{
	const uint64_t hi = 0xf0f0f0f0f0f0f0f0ull, d0 = PYJ_ONES * 0x30;

	/* 0x30..0x39: high nibble 3, and still 3 after adding 6 */
	return (w & hi) == d0 && ((w + PYJ_ONES * 0x06) & hi) == d0;
}

/*
 * A JSON number's text as significand and power of ten: the first 19
 * significant digits in *w (*trunc if a nonzero digit was dropped), *e10
 * the exponent of its last digit.  Returns the end, or NULL if the text
 * is not in JSON's grammar.
 */
static const char *pyj_decimal(const char *p, const char *end, bool *neg,
			       uint64_t *w_out, int *e10_out, bool *trunc)
{
	uint64_t w = 0;
	int nd = 0, e10 = 0;

	*trunc = false;
	*neg = p < end && *p == '-';
	p += *neg;
	if (p >= end)
		return NULL;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		for (; p < end && *p >= '0' && *p <= '9'; p++) {
			if (nd < 19) {
				w = w * 10 + (uint64_t)(*p - '0');
				nd++;
			} else {
				e10++;
				*trunc |= *p != '0';
			}
		}
	} else {
		return NULL;
	}
	if (p < end && *p == '.') {
		const char *f = ++p;

		if (!w) /* leading zeros of 0.000ddd are not significant */
			while (p < end && *p == '0')
				p++;
		e10 -= (int)(p - f);
		while (end - p >= 8 && nd <= 11) {
			uint64_t x;

			memcpy(&x, p, 8);
			if (!pyj_all8digits(x))
				break;
			w = w * 100000000 + pyj_parse8(x);
			nd += 8;
			e10 -= 8;
			p += 8;
		}
		for (; p < end && *p >= '0' && *p <= '9'; p++) {
			if (nd < 19) {
				w = w * 10 + (uint64_t)(*p - '0');
				nd += w != 0;
				e10--;
			} else {
				*trunc |= *p != '0';
			}
		}
		if (p == f)
			return NULL;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		int x = 0, sign = 1;

		p++;
		if (p < end && (*p == '+' || *p == '-'))
			sign = *p++ == '-' ? -1 : 1;
		if (p >= end || *p < '0' || *p > '9')
			return NULL;
		for (; p < end && *p >= '0' && *p <= '9'; p++)
			if (x < 100000)
				x = x * 10 + (*p - '0');
		e10 += sign * x;
	}
	*w_out = w;
	*e10_out = e10;
	return p;
}

int pyj_parse_f64(const char *s, size_t len, double *out)
{
	bool neg, trunc;
	uint64_t w;
	int e10, err;
	double v;

	if (pyj_decimal(s, s + len, &neg, &w, &e10, &trunc) != s + len)
		return pyj_special_text(s, len, out) ? 0 : -EINVAL;
	/* exact operands, one rounding (Clinger's fast path) */
	if (!trunc && w <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
		v = (double)w;
		v = e10 < 0 ? v / pyj_pow10[-e10] : v * pyj_pow10[e10];
		*out = neg ? -v : v;
		return 0;
	}
	v = pyj_strtod_n(s, len, &err);
	if (err)
		return err;
	if (isinf(v))
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * strtof's answer, mostly without strtof: with at most 19 digits and
 * |e10| <= 22, w 10^e10 in double is within 2 ulps of the exact value
 * (two roundings).  Its rounding to float32 is then the right one unless
 * it lies within 2 ulps of a float32 rounding midpoint (the low 29 bits
 * of the double's significand near 2^28): then strtof decides.  This is
 * that fast path for what pyj_decimal read: 1 with *out, or 0 if strtof
 * must decide (or the number overflows float32).
 */
static inline int pyj_f32_fast(bool neg, uint64_t w, int e10, bool trunc,
			       float *out)
{
	if (!w) {
		*out = neg ? -0.0f : 0.0f;
		return 1;
	}
	if (pyj_likely(!trunc && e10 >= -22 && e10 <= 22)) {
		double d = (double)w;
		uint64_t bits, low;
		float v;

		d = e10 < 0 ? d / pyj_pow10[-e10] : d * pyj_pow10[e10];
		memcpy(&bits, &d, sizeof(bits));
		low = bits & ((1u << 29) - 1);
		if (low - ((1u << 28) - 4) > 8) {
			v = (float)d;
			if (pyj_unlikely(isinf(v)))
				return 0;
			*out = neg ? -v : v;
			return 1;
		}
	}
	return 0;
}

int pyj_parse_f32(const char *s, size_t len, float *out)
{
	bool neg, trunc;
	uint64_t w;
	int e10, err;
	float v;

	if (pyj_unlikely(pyj_decimal(s, s + len, &neg, &w, &e10, &trunc) !=
			 s + len)) {
		double sv;

		if (!pyj_special_text(s, len, &sv))
			return -EINVAL;
		*out = (float)sv;
		return 0;
	}
	if (pyj_f32_fast(neg, w, e10, trunc, out))
		return 0;
	v = pyj_strtof_n(s, len, &err);
	if (err)
		return err;
	if (isinf(v))
		return -EINVAL;
	*out = v;
	return 0;
}

int pyj_parse_f32_list(const char *s, size_t len, float *out, size_t *n)
{
	const char *p = s, *q, *end = s + len;
	size_t k = 0;
	int is_int;

	if (p >= end || *p != '[')
		return -EINVAL;
	p = pyj_skip_ws(p + 1, end);
	if (p < end && *p == ']')
		goto close;
	for (;;) {
		bool neg, trunc;
		uint64_t w;
		int e10;

		/*
		 * Read once: pyj_decimal finds where a number in JSON's
		 * grammar ends as pyj_scan_number does, and the fast path
		 * takes most; the rest (NaN, many digits, near a midpoint,
		 * not a number) go the way of a single number.
		 */
		q = pyj_decimal(p, end, &neg, &w, &e10, &trunc);
		if (!q || !pyj_f32_fast(neg, w, e10, trunc, &out[k])) {
			q = pyj_scan_number(p, end, &is_int);
			if (!q || pyj_parse_f32(p, (size_t)(q - p), &out[k]))
				return -EINVAL;
		}
		k++;
		p = pyj_skip_ws(q, end);
		if (p < end && *p == ']')
			break;
		if (p >= end || *p != ',')
			return -EINVAL;
		p = pyj_skip_ws(p + 1, end);
	}
close:
	if (p + 1 != end)
		return -EINVAL;
	*n = k;
	return 0;
}
