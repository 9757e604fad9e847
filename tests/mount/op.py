# op.py - runs one file operation and prints OK or the errno's name
# (ENOENT, EINVAL, ...), errors from close() included.
#   op.py write|write2|write_fsync|append PATH < DATA
#   op.py read|mkdir|rmdir|unlink|stat PATH      op.py rename FROM TO
import errno
import os
import sys


def P(s):
    return os.fsencode(s)


cmd, path = sys.argv[1], P(sys.argv[2])
try:
    if cmd in ("write", "write2", "write_fsync", "append"):
        data = sys.stdin.buffer.read()
        fl = os.O_WRONLY | os.O_CREAT
        fl |= os.O_APPEND if cmd == "append" else os.O_TRUNC
        fd = os.open(path, fl, 0o644)
        try:
            if cmd == "write2":  # in two write()s
                os.write(fd, data[: len(data) // 2])
                os.write(fd, data[len(data) // 2:])
            else:
                os.write(fd, data)
            if cmd == "write_fsync":
                os.fsync(fd)
        finally:
            os.close(fd)
    elif cmd == "read":
        with open(path, "rb") as f:
            f.read()
    elif cmd == "mkdir":
        os.mkdir(path)
    elif cmd == "rmdir":
        os.rmdir(path)
    elif cmd == "unlink":
        os.unlink(path)
    elif cmd == "rename":
        os.rename(path, P(sys.argv[3]))
    elif cmd == "stat":
        os.stat(path)
    else:
        sys.exit("op.py: unknown command " + cmd)
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
