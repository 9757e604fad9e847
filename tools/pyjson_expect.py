#!/usr/bin/env python3
"""pyjson_expect.py - expected strings for tests/test_pyjson.c.

Run with /usr/bin/python3: prints C initialisers that tests/test_pyjson.c
holds as literals; with a file name (tests/test_pyjson.c), rewrites the
lines between its "BEGIN name" and "END name" comments instead:

  f32_expect  float32 bit pattern -> its shortest repr, from an exact
              reference of its own (fractions, no strtof or printf): every
              decimal with as few significant digits as possible inside
              the float's rounding interval, the nearest (a tie to the
              even one), laid out by repr(float(digits)), which gives back
              the same digits for 9 or fewer.
  f64_expect  double -> repr(), which json.dumps writes.
  str_expect  bytes -> json.dumps(bytes.decode("utf-8", "surrogateescape")).
  val_expect  JSON text -> json.dumps(json.loads(text)).
"""
from fractions import Fraction
import json
import math
import random
import struct
import sys


def c_str(b):
    """A C string literal of bytes b (hex escapes kept from running on)."""
    out = '"'
    prev_hex = False
    for ch in b:
        c = chr(ch)
        if c in '"\\':
            out += "\\" + c
            prev_hex = False
        elif 0x20 <= ch < 0x7F and not (prev_hex and c in "0123456789abcdefABCDEF"):
            out += c
            prev_hex = False
        else:
            out += "\\x%02x" % ch
            prev_hex = True
    return out + '"'


def f32_value(bits):
    sign = -1 if bits >> 31 else 1
    e = (bits >> 23) & 0xFF
    f = bits & 0x7FFFFF
    if e == 0:
        return sign * Fraction(f) * Fraction(2) ** -149
    return sign * Fraction(f | 1 << 23) * Fraction(2) ** (e - 150)


def f32_interval(bits):
    """The rounding interval (lo, hi, inclusive) of a positive finite float."""
    x = f32_value(bits)
    lo = (f32_value(bits - 1) + x) / 2 if bits > 0 else x
    if bits == 0x7F7FFFFF:
        nxt = Fraction(2) ** 128
    else:
        nxt = f32_value(bits + 1)
    hi = (x + nxt) / 2
    mant = bits & 0x7FFFFF
    if (bits >> 23) & 0xFF:
        mant |= 1 << 23
    return lo, hi, mant % 2 == 0


def f32_shortest(bits):
    """(digits, exponent) of the shortest nearest decimal of a positive float."""
    x = f32_value(bits)
    lo, hi, incl = f32_interval(bits)
    top = math.floor(math.log10(x))  # close enough: all nearby exponents tried
    for n in range(1, 10):
        cands = []
        for e in range(top - n - 1, top - n + 4):
            step = Fraction(10) ** e
            m0 = math.ceil(lo / step)
            m1 = math.floor(hi / step)
            for m in range(max(m0, 10 ** (n - 1)), min(m1, 10 ** n - 1) + 1):
                v = m * step
                if (v == lo or v == hi) and not incl:
                    continue
                cands.append((abs(v - x), m % 2, m, e))
        if cands:
            cands.sort()
            _, _, m, e = cands[0]
            return m, e
    raise AssertionError(bits)


def f32_repr(bits):
    if (bits >> 23) & 0xFF == 0xFF:
        return "NaN" if bits & 0x7FFFFF else ("-Infinity" if bits >> 31 else "Infinity")
    if bits & 0x7FFFFFFF == 0:
        return "-0.0" if bits >> 31 else "0.0"
    m, e = f32_shortest(bits & 0x7FFFFFFF)
    s = repr(float("%de%d" % (m, e)))
    return ("-" if bits >> 31 else "") + s


def nearest_f32_bits(r):
    """Bits of the float32 nearest the positive fraction r (ties to even)."""
    lo, hi = 0, 0x7F7FFFFF
    while lo < hi:  # the last float <= r
        mid = (lo + hi + 1) // 2
        if f32_value(mid) <= r:
            lo = mid
        else:
            hi = mid - 1
    if lo < 0x7F7FFFFF:
        a, b = f32_value(lo), f32_value(lo + 1)
        if r - a > b - r or (r - a == b - r and lo % 2):
            lo += 1
    return lo


def f32_cases():
    bits = set()
    bits.update([1, 2, 3, 9, 10, 0x7FFFFF, 0x7FFFFE, 0x400000, 0x800000,
                 0x800001, 0x7F7FFFFF, 0x7F7FFFFE, 0x7F000000, 0x00FFFFFF])
    for e in range(0, 255):  # every power of 2 (asymmetric intervals)
        bits.add(e << 23 if e else 1 << 22)
    for k in range(-45, 39):  # powers of ten
        b = nearest_f32_bits(Fraction(10) ** k)
        if 0 < b <= 0x7F7FFFFF:
            bits.update([b, b - 1, b + 1])
    for i in list(range(1, 33)) + [100, 1000, 65535, 65536, 99999999,
                                   16777215, 16777216, 16777218, 123456789,
                                   2097152, 134217792, 1 << 30, 10 ** 9]:
        bits.add(nearest_f32_bits(Fraction(i)))
    for fr in [Fraction(1, 10), Fraction(2, 10), Fraction(3, 10),
               Fraction(1, 3), Fraction(2, 3), Fraction(1, 7),
               Fraction(8589973, 4), Fraction(2097152.25),
               Fraction(7.038531e-26), Fraction(1, 10 ** 5),
               Fraction(15, 10 ** 8), Fraction(123, 10 ** 7),
               Fraction(9999999, 10 ** 7), Fraction(99999995, 10 ** 8),
               Fraction(314159265, 10 ** 8), Fraction(271828183, 10 ** 8),
               Fraction(1e16), Fraction(1e-5), Fraction(1.5e-7),
               Fraction(12345678, 100)]:
        bits.add(nearest_f32_bits(fr))
    rnd = random.Random(20261124)
    for _ in range(250):
        bits.add(rnd.randrange(1, 0x7F800000))
    for _ in range(60):  # typical embedding components
        bits.add(struct.unpack("<I", struct.pack("<f", rnd.uniform(-1, 1)))[0] & 0x7FFFFFFF)
    out = sorted(bits)
    out += [0x80000000, 0, 0x7F800000, 0xFF800000, 0x7FC00000,
            0xBDCCCCCD, 0xFF7FFFFF, 0x80000001]
    return out


F64 = [0.1, 1 / 3, 2 / 3, 1e16, 1e-05, 5e-324, 1.7976931348623157e308,
       -0.0, 0.0, 1e22, 123456789.0, 1.0, -1.5, 100.0, 1e15, 9999999999999998.0,
       1e-4, 0.0001234, 1.5e-07, 1.2345e20, 123456789012345.0,
       1234567890123456.0, 12345678901234567.0, 2.0 ** 50 + 0.25,
       2.0 ** 50 + 0.75, 2.0 ** 63, 2.0 ** -1022, 2.0 ** -1074 * 3, 1e23,
       8.41e21, 5e-310, 2.2250738585072014e-308, 0.30000000000000004,
       1e100, 1e-100, 3.14159, math.pi, math.e, -2.5e-5, 4.35,
       float("nan"), float("inf"), float("-inf"), 2.0 ** 1023, 2.0 ** 52,
       2.0 ** 53 + 2, 0.5, 0.25, 1e21, 1e-7, 9.999999999999999e22]


STRS = [b"", b"plain", "\u00e9".encode(), "\U0001F600".encode(),
        bytes(range(0, 32)), b"\x7f", "\u2028\u2029".encode(),
        b'quote " and back \\ slash', b"/ solidus", b"a\x00b",
        "caf\u00e9 \u65e5\u672c \U00010348 \uffff \u0800".encode(),
        b"\xff", b"\xc3", b"\xc3(", b"\xe2\x82", b"\xe2\x82(", b"\xed\xa0\x80",
        b"\xc0\x80", b"\xf4\x90\x80\x80", b"\xf0\x9f\x98", b"\x80abc",
        b"ok\xfe\xffok", "\U0010FFFF".encode(), b"\xef\xbb\xbfbom",
        b"long " * 40 + "\u00e9".encode() + b" tail"]


VALS = ['{"a":1,"b":[true,false,null],"c":{}}', "[]", "{}", "[ ]", " { } ",
        "-0", "[-0, 0, -0.0, 0.0]", "[1E5, 1e5, 1.0e+2, 0.1E-2, 2.5e-324]",
        "[1e400, -1e400, 1e-400]", "[NaN, Infinity, -Infinity]",
        "123456789012345678901234567890", "-123456789012345678901234567890",
        '"\\u00E9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\"\\\\"',
        '"\\ud800"', '"\\udc00\\ud800"', '"\\u0000\\u001F\\u007f\\u0041"',
        '"\xc3\xa9\xf0\x9f\x98\x80\x7f"', '{"k\\u00e9y" : "v"}',
        '[1.0, 2.50, 3.14159265358979323846, 0.000001, 1e16, 1e15]',
        '{\n  "a": [\n    1,\n    2\n  ]\n}', '[[[[[]]]]]',
        '{"a":{"b":{"c":[1,{"d":"e"}]}}}', "true", "null", '"x"', "1.5",
        '[0.1, 0.2, 0.30000000000000004, 100, 1.7976931348623157e308]',
        # a key twice: the last value, at the first one's place
        '{"a":1,"b":2,"a":3}', '{"\\u0061":1,"a":2}',
        '{"a":{"x":1,"x":2},"b":[],"a":{"x":3,"y":{"x":0},"x":5}}',
        '[{"k":1,"j":0},{"k":2,"k":[1,{"k":3,"k":4}]}]',
        '{"e\\u0301":1,"\u00e9":2,"\\u00e9":3}',
        '{"\\ud800":1,"\\ud800":2,"\\ud83d\\ude00":3,"\U0001F600":4}']


def blocks():
    return {"f32_expect": f32_block(), "f64_expect": f64_block(),
            "str_expect": str_block(), "val_expect": val_block()}


def f32_block():
    return ["\t{ 0x%08x, \"%s\" }," % (b, f32_repr(b)) for b in f32_cases()]


def f64_block():
    out = []
    for d in F64:
        if d != d:
            lit = "NAN"
        elif d == math.inf:
            lit = "INFINITY"
        elif d == -math.inf:
            lit = "-INFINITY"
        else:
            lit = d.hex()
        out.append("\t{ %s, \"%s\" }," % (lit, json.dumps(d)))
    return out


def str_block():
    return ["\t{ %s, %d, %s }," % (c_str(b), len(b), c_str(json.dumps(
        b.decode("utf-8", "surrogateescape")).encode())) for b in STRS]


def val_block():
    out = []
    for t in VALS:
        tb = t.encode("utf-8", "surrogateescape")
        out.append("\t{ %s, %s }," % (c_str(tb), c_str(
            json.dumps(json.loads(tb)).encode())))
    return out


def main():
    bl = blocks()
    if len(sys.argv) > 1:
        lines = open(sys.argv[1]).read().split("\n")
        out = []
        skip = False
        for ln in lines:
            st = ln.strip()
            if st.startswith("/* END "):
                skip = False
            if not skip:
                out.append(ln)
            if st.startswith("/* BEGIN "):
                out.extend(bl[st.split()[2]])
                skip = True
        open(sys.argv[1], "w").write("\n".join(out))
        return
    for name, lines in bl.items():
        print("/* %s */" % name)
        print("\n".join(lines))


if __name__ == "__main__":
    main()
