#!/usr/bin/env python3
"""Build the golden test inputs byte by byte, independently of the Go
encoder: text through Python's codecs, numbers assembled here.

Run from this folder: python3 gen_inputs.py"""

import os
from decimal import Decimal, getcontext

getcontext().prec = 60
import struct


def ebc(s, n, cp="cp037"):
    assert len(s) <= n, s
    return s.ljust(n).encode(cp)


def digits(v, n, scale):
    u = abs(int((Decimal(str(v)) * 10**scale).to_integral_exact()))
    s = str(u).rjust(n, "0")
    assert len(s) == n, (v, n)
    return s


def zoned(v, n, scale=0, signed=False):
    """EBCDIC zoned decimal, sign overpunched in the last byte (C/D, F unsigned)."""
    s = digits(v, n, scale)
    b = bytearray(0xF0 | int(c) for c in s)
    if signed:
        b[-1] = (0xD0 if v < 0 else 0xC0) | int(s[-1])
    return bytes(b)


def packed(v, n, scale=0, signed=True):
    s = digits(v, n, scale)
    if len(s) % 2 == 0:
        s = "0" + s
    nib = [int(c) for c in s] + [(0xD if Decimal(str(v)) < 0 else 0xC) if signed else 0xF]
    return bytes(nib[i] << 4 | nib[i + 1] for i in range(0, len(nib), 2))


def binary(v, size, signed=True, little=False):
    fmt = {2: "h", 4: "i", 8: "q"}[size]
    if not signed:
        fmt = fmt.upper()
    return struct.pack(("<" if little else ">") + fmt, v)


def hfp(f, n):
    """IBM hexadecimal floating point of n bytes, for values exact in it."""
    if f == 0:
        return bytes(n)
    sign = 0x80 if f < 0 else 0
    a, e = abs(f), 64
    while a >= 1:
        a /= 16
        e += 1
    while a < 1 / 16:
        a *= 16
        e -= 1
    frac = round(a * 2 ** (8 * n - 8))
    return bytes([sign | e]) + frac.to_bytes(n - 1, "big")


def rdw(data, little=False):
    n = len(data) + 4
    return (struct.pack("<H", n) if little else struct.pack(">H", n)) + b"\0\0" + data


def customer(cid, typ, last, first, street, city, zipc, country, bal, limit, date, branch, score, ytd, phones, count=None):
    y, m, d = date
    sc = ("-" if score < 0 else "+").encode("cp037") + zoned(abs(score), 3)
    b = (zoned(cid, 8) + ebc(typ, 1) + ebc(last, 20) + ebc(first, 15) + ebc(street, 25) + ebc(city, 15)
         + zoned(zipc, 5) + ebc(country, 2) + packed(bal, 11, 2) + packed(limit, 9, 2)
         + zoned(y, 4) + zoned(m, 2) + zoned(d, 2) + binary(branch, 2) + sc + zoned(ytd, 7, 2, signed=True)
         + ebc("", 10) + zoned(len(phones) if count is None else count, 1))
    for t, num in phones:
        b += ebc(t, 1) + ebc(num, 12)
    return b


CUSTOMERS = [
    customer(10000001, "P", "SMITH", "JOHN", "12 MAIN STREET", "SPRINGFIELD", 62701, "US",
             12345.67, 5000, (2019, 3, 15), 42, 710, 123.45, []),
    customer(10000002, "C", "ACME CORPORATION", "", "1 INDUSTRIAL WAY", "TOLEDO", 43604, "US",
             -987654321.09, 9999999.99, (2001, 12, 31), -7, -15, -0.01,
             [("H", "555-0100"), ("M", "555-0199")]),
]
BAD_PACKED = bytearray(customer(10000003, "P", "BAD", "PACKED", "", "", 0, "US", 1, 1, (2020, 1, 1), 1, 1, 1, [("W", "555-0300")]))
BAD_PACKED[95] = 0xAB  # a nibble above 9 inside CUST-BALANCE
CUSTOMERS.append(bytes(BAD_PACKED))
CUSTOMERS.append(customer(10000004, "P", "O'BRIEN", "MARY-KATE", "7 HARBOUR ROAD", "CORK", 0, "IE",
                          0, 0, (2024, 2, 29), 9999, 0, 99999.99,
                          [("H", "+353-21-1234"), ("M", "+353-87-9999"), ("W", "+353-21-5555")]))
TOO_MANY = customer(10000005, "P", "TOO", "MANY", "", "", 1, "US", 1, 1, (2020, 1, 1), 1, 1, 1,
                    [("H", "1"), ("H", "2"), ("H", "3"), ("H", "4"), ("H", "5")])


def tran(tid, kind, data, amounts, disp, cr, scaled, small, note, count, total, bigv, bad_amount=False):
    b = binary(tid, 8, signed=False) + ebc(kind, 1) + data
    for i, a in enumerate(amounts):
        p = packed(a, 7, 2)
        if bad_amount and i == 1:
            p = b"\x12\x3F\x4A\x5C"
        b += p
    b += ebc(disp, 10) + ebc(cr, 9) + zoned(scaled, 3) + zoned(small, 2) + ebc(note.rjust(8), 8)
    b += b"\x00" + binary(count, 2) + binary(total, 8) + packed(bigv, 29, 4)
    assert len(b) == 99, len(b)
    return b


TRANS = [
    tran(4000000001, "P", packed(1234567.89, 15, 2) + ebc("EUR", 3) + zoned(123456789, 9),
         [1.5, -2.25, 0], "-12,345.67", " $12.34CR", 123, 45, "NOTE", 12, 123456789012345678,
         "1234567890123456789012345.6789"),
    tran(4000000002, "T", binary(1001, 4, signed=False) + binary(-2002, 4) + hfp(1.0625, 8) + hfp(-0.5, 4),
         [99999.99, -99999.99, 0.01], "  1,234.50", "  $5.00  ", 999, 1, "  RIGHT!", -1, -999999999999999999, 0),
    tran(4000000003, "X", ebc("FREE TEXT VIEW", 20), [1, 2, 3], "      0.00", "   $0.00  "[:9], 0, 0, "", 0, 0, "-1.0001",
         bad_amount=True),
]


def display_line(code, qty, lead, sep, price, name, edit):
    s = code.ljust(4) + qty + lead + sep + price + name.ljust(10) + edit
    assert len(s) == 41, (s, len(s))
    return s


DISPLAY = [
    display_line("A001", "0012{", "J23", "1234-", "001299", "WIDGET", "  12.50-"),
    display_line("A002", "0012J", "A23", "0001+", "000001", "GADGET", "   0.00 "),
    display_line("A003", "00X12", "123", "1234+", "001299", "BROKEN", "   1.00 "),
    display_line("A004", "     ", "   ", "     ", "      ", "", "        "),
    "A005000011239999+0001",
]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def main():
    g = "golden/"
    write(g + "custmast_fixed/input.bin", b"".join(CUSTOMERS) + CUSTOMERS[0][:50])
    write(g + "custmast_free_rdw/input.bin", b"".join(rdw(c) for c in CUSTOMERS + [TOO_MANY]) + rdw(CUSTOMERS[0])[:30])
    write(g + "custmast_rdw_little/input.bin", b"".join(rdw(c, little=True) for c in CUSTOMERS))
    write(g + "tranrec/input.bin", b"".join(TRANS))
    write(g + "display_text/input.txt", ("\n".join(DISPLAY) + "\r\n\n").encode("ascii"))
    cp273 = display_line("Ä001", "0012{", "123", "0001+", "000100", "Müller", "   9.99 ")
    write(g + "display_cp273_text/input.bin",
          ebc(cp273, 41, "cp273")[:41].replace("{".encode("cp273"), b"\xC0") + b"\x15" + ebc("Ö002", 4, "cp273") + b"\x25")
    detail = ebc("D", 1) + ebc("AB12", 4) + packed(-5, 3) + ebc("CD34", 4) + packed(7, 3) + ebc("XX", 2)
    write(g + "multi_detail/input.bin", detail + detail[:7])


if __name__ == "__main__":
    main()
