#!/usr/bin/env python3
"""pyjson_tables.py - the power-of-ten tables of the shortest-digits writers.

Checks the integer formulas core/pyjson_num.c uses for floor(q log10 2),
floor(log10(3/4 2^q)) and floor(k log2 10) over the ranges float32 and
double need, then makes the tables of 10^-k:

  pyj_f32_g[]   float32: 64 bits, ceil(10^-k 2^(63 - b)) where
                10^-k = beta 2^b, 1 <= beta < 2 (exact for 0 <= -k <= 27);
  pyj_f64_g[]   double: 126 bits, ceil(10^-k 2^(125 - b)), as two 63-bit
                halves (exact for 0 <= -k <= 54).

Without arguments prints both; with `core/pyjson_num.c core/pyjson_pow10.h`
rewrites the first between its "BEGIN tools/pyjson_tables.py" and "END"
comments and the second whole.  Exact: Python's integers and fractions,
no floating point in the results.
"""
from fractions import Fraction
import io
import math
import sys

F32_Q = (-149, 104)  # float32: c * 2^q, c < 2^24
F64_Q = (-1074, 971)  # double: c * 2^q, c < 2^53


def floor_log(num: Fraction, base: int) -> int:
    """floor(log_base(num)) for num > 0, exactly."""
    bits = num.numerator.bit_length() - num.denominator.bit_length()
    e = int(bits * math.log(2) / math.log(base))
    while Fraction(base) ** (e + 1) <= num:
        e += 1
    while Fraction(base) ** e > num:
        e -= 1
    return e


def flog10pow2(q):  # pyjson_num.c: (q * 78913) >> 18
    return (q * 78913) >> 18


def flog10_3q_pow2(q):  # pyjson_num.c, float32: (q * 78913 - 32745) >> 18
    return (q * 78913 - 32745) >> 18


def flog10_3q_pow2_wide(q):  # pyjson_num.c, double
    return (q * 315653 - 131072) >> 20


def flog2pow10(k):  # pyjson_num.c: (k * 1741647) >> 19
    return (k * 1741647) >> 19


def check(qmin, qmax, shift_lo, shift_hi, shift, f3q):
    """The formulas over q in [qmin, qmax]; returns the range of k."""
    ks = set()
    for q in range(qmin, qmax + 1):
        k = floor_log(Fraction(2) ** q, 10)
        assert flog10pow2(q) == k, ("flog10pow2", q)
        ks.add(k)
        ka = floor_log(Fraction(3, 4) * Fraction(2) ** q, 10)
        assert f3q(q) == ka, ("flog10_3q_pow2", q)
        ks.add(ka)
        for kk in (k, ka):
            b = floor_log(Fraction(10) ** -kk, 2)
            assert flog2pow10(-kk) == b, ("flog2pow10", -kk)
            # the shift pyjson_num.c uses
            assert shift_lo <= q + b + shift <= shift_hi, ("shift", q, kk)
    return min(ks), max(ks)


def g_of(k, bits):
    """ceil(10^-k 2^(bits - 1 - b)): in [2^(bits-1), 2^bits)."""
    b = floor_log(Fraction(10) ** -k, 2)
    g = math.ceil(Fraction(10) ** -k * Fraction(2) ** (bits - 1 - b))
    assert 2 ** (bits - 1) <= g < 2 ** bits
    return g


def f32_table():
    kmin, kmax = check(*F32_Q, 33, 36, 33, flog10_3q_pow2)
    out = io.StringIO()
    out.write("#define PYJ_F32_KMIN (%d)\n" % kmin)
    out.write("#define PYJ_F32_KMAX %d\n" % kmax)
    out.write("/* g for k = PYJ_F32_KMIN.. : ceil(10^-k * 2^(63 - b)) */\n")
    out.write("static const uint64_t pyj_f32_g[] = {\n")
    for k in range(kmin, kmax + 1):
        out.write("\t0x%016xull, /* %d */\n" % (g_of(k, 64), k))
    out.write("};\n")
    return out.getvalue()


def f64_header():
    kmin, kmax = check(*F64_Q, 2, 5, 2, flog10_3q_pow2_wide)
    out = io.StringIO()
    out.write("""/* pyjson_pow10.h - made by tools/pyjson_tables.py: do not edit. */
#ifndef LODEFS_PYJSON_POW10_H
#define LODEFS_PYJSON_POW10_H

#include <stdint.h>

/*
 * For k = PYJ_F64_KMIN..PYJ_F64_KMAX, with 10^-k = beta 2^b (1 <= beta <
 * 2): g = ceil(10^-k 2^(125 - b)), 126 bits, as g[k][0] 2^63 + g[k][1].
 */
""")
    out.write("#define PYJ_F64_KMIN (%d)\n" % kmin)
    out.write("#define PYJ_F64_KMAX %d\n\n" % kmax)
    out.write("static const uint64_t pyj_f64_g[][2] = {\n")
    for k in range(kmin, kmax + 1):
        g = g_of(k, 126)
        out.write("\t{ 0x%016xull, 0x%016xull }, /* %d */\n"
                  % (g >> 63, g & (2 ** 63 - 1), k))
    out.write("};\n\n#endif\n")
    return out.getvalue()


def main():
    f32 = f32_table()
    f64 = f64_header()
    if len(sys.argv) < 3:
        sys.stdout.write(f32 + "\n" + f64)
        return
    text = open(sys.argv[1]).read()
    a = text.index("/* BEGIN tools/pyjson_tables.py */\n")
    a = text.index("\n", a) + 1
    b = text.index("/* END tools/pyjson_tables.py */", a)
    new = text[:a] + f32 + text[b:]
    with open(sys.argv[1], "w") as f:
        f.write(new)
    with open(sys.argv[2], "w") as f:
        f.write(f64)


if __name__ == "__main__":
    main()
