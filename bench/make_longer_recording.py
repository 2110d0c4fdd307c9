#!/usr/bin/env python3
"""Writes a copy of a file-mode perf.data whose data section is repeated N times, each copy's
timestamps shifted past the previous one, so a reader sees a recording N times longer with the
same metadata. For memory benchmarks: peak RSS must not grow with the recording. With
--keep-bytes N the data section is first cut to its records within the first N bytes (a short
recording with the real metadata, for measuring start-up cost).

Only the records whose layout the shift needs are rewritten: SAMPLE time (by the first attr's
sample_type) and the sample_id_all trailer time of other kernel records."""
import struct
import sys

SAMPLE_TID, SAMPLE_TIME, SAMPLE_ID, SAMPLE_STREAM_ID, SAMPLE_CPU, SAMPLE_IDENTIFIER = (
    1 << 1, 1 << 2, 1 << 6, 1 << 9, 1 << 7, 1 << 16)
SAMPLE_IP = 1 << 0


def first_records(body, limit):
    """The whole records of body that fit in its first `limit` bytes."""
    pos = 0
    while pos + 8 <= len(body):
        size = struct.unpack_from("<H", body, pos + 6)[0]
        if size < 8 or pos + size > limit:
            break
        pos += size
    return body[:pos]


def main(src, dst, copies, samples_only=False, keep_bytes=None):
    data = bytearray(open(src, "rb").read())
    magic, hsize, attr_size, a_off, a_size, d_off, d_size = struct.unpack_from("<7Q", data, 0)
    assert magic == 0x32454C4946524550 and hsize == 104, "file-mode perf.data expected"
    sample_type = struct.unpack_from("<Q", data, a_off + 24)[0]
    body = data[d_off:d_off + d_size]
    if keep_bytes is not None:
        body = first_records(body, keep_bytes)
    # sample TIME offset within a SAMPLE record (after the 8-byte header)
    t_off = 8 + 8 * sum(1 for b in (SAMPLE_IDENTIFIER, SAMPLE_IP, SAMPLE_TID) if sample_type & b)
    trailer = [b for b in (SAMPLE_TID, SAMPLE_TIME, SAMPLE_ID, SAMPLE_STREAM_ID, SAMPLE_CPU,
                           SAMPLE_IDENTIFIER) if sample_type & b]
    tr_size = 8 * len(trailer)
    tr_time = 8 * trailer.index(SAMPLE_TIME) if SAMPLE_TIME in trailer else None

    # time span of one copy
    last = 0
    pos = 0
    while pos + 8 <= len(body):
        rtype, misc, size = struct.unpack_from("<IHH", body, pos)
        if size < 8:
            break
        if rtype == 9:
            last = max(last, struct.unpack_from("<Q", body, pos + t_off)[0])
        pos += size
    span = last + 1

    out = bytearray(data[:d_off])
    for copy in range(copies):
        chunk = bytearray(body)
        shift = span * copy
        pos = 0
        while shift and pos + 8 <= len(chunk):
            rtype, misc, size = struct.unpack_from("<IHH", chunk, pos)
            if size < 8:
                break
            if samples_only and rtype in (3, 4, 7):  # COMM, EXIT, FORK become unknown records
                struct.pack_into("<I", chunk, pos, 120)
            elif rtype == 9:
                struct.pack_into("<Q", chunk, pos + t_off,
                                 struct.unpack_from("<Q", chunk, pos + t_off)[0] + shift)
            elif 0 < rtype < 64 and tr_time is not None and size >= 8 + tr_size:
                at = pos + size - tr_size + tr_time
                struct.pack_into("<Q", chunk, at, struct.unpack_from("<Q", chunk, at)[0] + shift)
            pos += size
        out += chunk
    new_size = len(body) * copies
    feat_table_old = d_off + d_size
    grow = new_size - d_size
    tail = bytearray(data[feat_table_old:])
    bits = data[72:104]
    count = sum(bin(b).count("1") for b in bits)
    for i in range(count):
        off = struct.unpack_from("<Q", tail, 16 * i)[0]
        struct.pack_into("<Q", tail, 16 * i, off + grow)
    out += tail
    struct.pack_into("<Q", out, 48, new_size)
    open(dst, "wb").write(out)


if __name__ == "__main__":
    args, keep = [], None
    rest = iter(sys.argv[1:])
    for a in rest:
        if a == "--keep-bytes":
            keep = int(next(rest))
        elif a != "--samples-only":
            args.append(a)
    main(args[0], args[1], int(args[2]), "--samples-only" in sys.argv, keep)
