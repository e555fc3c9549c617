"""A dependency-free PNG of training curves (numpy raster + tf.io.encode_png)."""

import numpy as np
import tensorflow as tf

# 3x5 glyphs for the labels we draw.
_GLYPHS = {
    "A": "010101111101101", "B": "110101110101110", "C": "011100100100011",
    "D": "110101101101110", "E": "111100110100111", "G": "011100101101011",
    "I": "111010010010111", "L": "100100100100111", "N": "110101101101101",
    "O": "010101101101010", "P": "110101110100100", "R": "110101110101101",
    "S": "011100010001110", "T": "111010010010010", "U": "101101101101111",
    "X": "101101010101101", "M": "101111111101101", "Y": "101101010010010",
    "H": "101101111101101", "F": "111100110100100", "K": "101101110101101",
    "V": "101101101101010", "W": "101101111111101", "Z": "111001010100111",
    "J": "001001001101010", "Q": "010101101110011", "0": "111101101101111", "1": "010110010010111",
    "2": "110001010100111", "3": "110001010001110", "4": "101101111001001",
    "5": "111100110001110", "6": "011100110101010", "7": "111001010010010",
    "8": "010101010101010", "9": "010101011001110", ".": "000000000000010",
    "_": "000000000000111", " ": "000000000000000", "-": "000000111000000",
}
COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14),
          (140, 86, 75)]


def _text(img, x, y, text, color=(0, 0, 0), scale=2):
    for ch in text.upper():
        glyph = _GLYPHS.get(ch, _GLYPHS[" "])
        for i, bit in enumerate(glyph):
            if bit == "1":
                r, c = divmod(i, 3)
                img[y + r * scale:y + (r + 1) * scale, x + c * scale:x + (c + 1) * scale] = color
        x += 4 * scale


def _line(img, p0, p1, color):
    n = int(max(abs(p1[0] - p0[0]), abs(p1[1] - p0[1]))) + 1
    xs = np.linspace(p0[0], p1[0], n).round().astype(int)
    ys = np.linspace(p0[1], p1[1], n).round().astype(int)
    for dy in (0, 1):
        img[np.clip(ys + dy, 0, img.shape[0] - 1), np.clip(xs, 0, img.shape[1] - 1)] = color


def _panel(img, left, top, width, height, series):
    img[top:top + height, left] = 0
    img[top + height, left:left + width] = 0
    values = [v for _, ys in series for v in ys if v is not None and np.isfinite(v)]
    if not values:
        return
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 0.5, hi + 0.5
    _text(img, left + 4, top - 14, f"{hi:.4f}")
    _text(img, left + 4, top + height - 14, f"{lo:.4f}")
    steps = max(len(ys) for _, ys in series)
    for k, (name, ys) in enumerate(series):
        color = COLORS[k % len(COLORS)]
        points = [(left + (i * (width - 10) / max(steps - 1, 1)) + 5,
                   top + height - 5 - (v - lo) / (hi - lo) * (height - 10))
                  for i, v in enumerate(ys) if v is not None and np.isfinite(v)]
        for p0, p1 in zip(points, points[1:]):
            _line(img, p0, p1, color)
        for x, y in points:
            img[int(y) - 2:int(y) + 3, int(x) - 2:int(x) + 3] = color
        _text(img, left + width + 12, top + 16 * k, name, color)


def write_curves(path, history):
    """`history`: list of per-epoch dicts. Top panel: test AUC/GAUC; bottom:
    train and test losses. Writes a PNG (x axis: epochs)."""
    def series(keys):
        return [(k, [h.get(k) for h in history]) for k in keys if any(k in h for h in history)]

    img = np.full((420, 720, 3), 255, np.uint8)
    _text(img, 10, 8, "METRICS BY EPOCH", scale=3)
    _panel(img, 40, 50, 400, 150, series(["test_auc", "test_gauc", "test_dinrepo_gauc"]))
    _panel(img, 40, 240, 400, 150, series(["loss", "ctr_loss", "aux_loss", "test_loss"]))
    tf.io.write_file(path, tf.io.encode_png(img))
