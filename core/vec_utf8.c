/* vec_utf8.c - UTF-8 decoding, lowercasing and word characters for vec. */
#include "core/vec_int.h"

size_t vec_utf8_next(const unsigned char *s, size_t len, size_t i, uint32_t *cp)
{
	unsigned char c = s[i];
	uint32_t v, min;
	size_t n, k;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		v = c & 0x1F;
		min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		v = c & 0x0F;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		goto bad;
	}
	if (len - i < n)
		goto bad;
	for (k = 1; k < n; k++) {
		if ((s[i + k] & 0xC0) != 0x80)
			goto bad;
		v = (v << 6) | (s[i + k] & 0x3F);
	}
	if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
		goto bad;
	*cp = v;
	return n;
bad:
	*cp = VEC_UTF8_BAD;
	return 1;
}

size_t vec_utf8_put(uint32_t cp, unsigned char *out)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xC0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xE0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		out[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (unsigned char)(0xF0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	out[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

/* Ranges where upper and lower case alternate: even (or odd) is upper. */
struct vec_case_pairs {
	uint32_t lo, hi;
	uint32_t upper_parity;
};

static const struct vec_case_pairs vec_pairs[] = {
	{ 0x0100, 0x012F, 0 }, { 0x0132, 0x0137, 0 }, { 0x0139, 0x0148, 1 },
	{ 0x014A, 0x0177, 0 }, { 0x0179, 0x017E, 1 }, { 0x01CD, 0x01DC, 1 },
	{ 0x01DE, 0x01EF, 0 }, { 0x01F8, 0x021F, 0 }, { 0x0222, 0x0233, 0 },
	{ 0x03D8, 0x03EF, 0 }, { 0x0460, 0x0481, 0 }, { 0x048A, 0x04BF, 0 },
	{ 0x04C1, 0x04CE, 1 }, { 0x04D0, 0x052F, 0 }, { 0x1E00, 0x1E95, 0 },
	{ 0x1EA0, 0x1EFF, 0 },
};

/* Ranges that map by a constant offset. */
struct vec_case_shift {
	uint32_t lo, hi;
	uint32_t delta;
};

static const struct vec_case_shift vec_shifts[] = {
	{ 0x0041, 0x005A, 32 },	    { 0x00C0, 0x00D6, 32 },
	{ 0x00D8, 0x00DE, 32 },	    { 0x0388, 0x038A, 37 },
	{ 0x038E, 0x038F, 63 },	    { 0x0391, 0x03A1, 32 },
	{ 0x03A3, 0x03AB, 32 },	    { 0x0400, 0x040F, 80 },
	{ 0x0410, 0x042F, 32 },	    { 0x0531, 0x0556, 48 },
	{ 0x10A0, 0x10C5, 0x1C60 }, { 0x2160, 0x216F, 16 },
	{ 0x24B6, 0x24CF, 26 },	    { 0xFF21, 0xFF3A, 32 },
	{ 0x10400, 0x10427, 40 },
};

/* Single code points. */
static const uint32_t vec_singles[][2] = {
	{ 0x0130, 0x0069 }, { 0x0178, 0x00FF }, { 0x018F, 0x0259 },
	{ 0x01C4, 0x01C6 }, { 0x01C5, 0x01C6 }, { 0x01C7, 0x01C9 },
	{ 0x01C8, 0x01C9 }, { 0x01CA, 0x01CC }, { 0x01CB, 0x01CC },
	{ 0x01F1, 0x01F3 }, { 0x01F2, 0x01F3 }, { 0x0386, 0x03AC },
	{ 0x038C, 0x03CC }, { 0x04C0, 0x04CF }, { 0x10C7, 0x2D27 },
	{ 0x10CD, 0x2D2D }, { 0x1E9E, 0x00DF }, { 0x2126, 0x03C9 },
	{ 0x212A, 0x006B }, { 0x212B, 0x00E5 },
};

uint32_t vec_cp_lower(uint32_t cp)
{
	size_t i;

	if (cp < 0x80)
		return cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
	for (i = 0; i < sizeof(vec_shifts) / sizeof(vec_shifts[0]); i++)
		if (cp >= vec_shifts[i].lo && cp <= vec_shifts[i].hi)
			return cp + vec_shifts[i].delta;
	for (i = 0; i < sizeof(vec_pairs) / sizeof(vec_pairs[0]); i++)
		if (cp >= vec_pairs[i].lo && cp <= vec_pairs[i].hi)
			return (cp & 1) == vec_pairs[i].upper_parity ? cp + 1
								     : cp;
	for (i = 0; i < sizeof(vec_singles) / sizeof(vec_singles[0]); i++)
		if (cp == vec_singles[i][0])
			return vec_singles[i][1];
	return cp;
}

int vec_cp_is_word(uint32_t cp)
{
	if (cp < 0x80)
		return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') ||
		       (cp >= 'A' && cp <= 'Z');
	if (cp == VEC_UTF8_BAD)
		return 0;
	/* Latin-1 punctuation and symbols; ª µ º are letters */
	if (cp <= 0xBF)
		return cp == 0xAA || cp == 0xB5 || cp == 0xBA;
	if (cp == 0xD7 || cp == 0xF7)
		return 0;
	/* punctuation, symbols, arrows, maths, box drawing, dingbats ... */
	if (cp >= 0x2000 && cp <= 0x2BFF)
		return 0;
	if (cp >= 0x2E00 && cp <= 0x2E7F)
		return 0;
	/* CJK symbols and punctuation */
	if (cp >= 0x3000 && cp <= 0x303F)
		return 0;
	/* private use */
	if (cp >= 0xE000 && cp <= 0xF8FF)
		return 0;
	/* vertical forms, small forms, BOM / zero width no-break space */
	if ((cp >= 0xFE10 && cp <= 0xFE1F) || (cp >= 0xFE30 && cp <= 0xFE6F) ||
	    cp == 0xFEFF)
		return 0;
	/* fullwidth punctuation (fullwidth digits and letters are words) */
	if ((cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) ||
	    (cp >= 0xFF3B && cp <= 0xFF40) || (cp >= 0xFF5B && cp <= 0xFF65))
		return 0;
	if (cp >= 0xFFF0 && cp <= 0xFFFF)
		return 0;
	/* emoji, pictographs and other symbol planes */
	if (cp >= 0x1F000 && cp <= 0x1FBFF)
		return 0;
	if (cp >= 0xF0000)
		return 0;
	return 1;
}

size_t vec_utf8_lower(const char *s, size_t n, char *out)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned char *o = (unsigned char *)out;
	size_t i = 0, w = 0, step;
	uint32_t cp;

	while (i < n) {
		step = vec_utf8_next(u, n, i, &cp);
		if (cp == VEC_UTF8_BAD) {
			o[w++] = u[i];
		} else if (cp == 0x0130) {
			/* Python: 'İ'.lower() == 'i' + COMBINING DOT ABOVE */
			o[w++] = 'i';
			w += vec_utf8_put(0x0307, o + w);
		} else {
			w += vec_utf8_put(vec_cp_lower(cp), o + w);
		}
		i += step;
	}
	return w;
}
