"""Writing fixture files in the public formats."""

import gzip


def write_lines(path, lines, gz=False):
    """Writes text lines (newline-terminated) to `path`, gzip-compressed if `gz`."""
    data = "".join(line + "\n" for line in lines).encode("utf-8")
    with (gzip.open(path, "wb") if gz else open(path, "wb")) as f:
        f.write(data)
    return str(path)
