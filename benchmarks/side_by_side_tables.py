"""The pure parts of `side_by_side.py`: mode names, and the ratio tables from
the runs' records."""

import statistics


def split_steps_per_execution(mode):
    """"faithful+xla+spe16" -> ("faithful+xla", 16)."""
    parts = mode.split("+")
    calls = [p for p in parts if p.startswith("spe")]
    rest = "+".join(p for p in parts if not p.startswith("spe"))
    if not calls:
        return rest, 1
    if len(calls) > 1 or not calls[0][3:].isdigit() or int(calls[0][3:]) < 1:
        raise ValueError(f"Invalid mode {mode!r}: +spe takes one positive count, e.g. +spe16.")
    return rest, int(calls[0][3:])


def summarize(records):
    """Rows {model, T, batch_size, original: [...], arms: {arm: [...]}} of ex/s."""
    rows = {}
    for r in records:
        key = (r["model"], int(r["T"]), int(r["batch_size"]))
        row = rows.setdefault(key, {"model": key[0], "T": key[1], "batch_size": key[2],
                                    "original": [], "arms": {}})
        if r.get("code") == "original":
            row["original"].append(r["examples_per_s"])
        else:
            row["arms"].setdefault(r["arm"], []).append(r["examples_per_s"])
    out = []
    for key in sorted(rows):
        row = rows[key]
        original = statistics.median(row["original"]) if row["original"] else None
        row["original_median"] = original
        row["ratios"] = {arm: (statistics.median(v) / original if original else None)
                         for arm, v in row["arms"].items()}
        out.append(row)
    return out


def _span(values):
    lo, hi = min(values), max(values)
    return f"{statistics.median(values):,.0f} ({lo:,.0f}–{hi:,.0f})"


def markdown(summary, arms, header):
    lines = [header, "",
             "| model | B | T | original ex/s (range) | "
             + " | ".join(f"zoo {a} ex/s (range) | × original" for a in arms) + " |",
             "| --- | --- | --- | --- | " + " | ".join("--- | ---" for _ in arms) + " |"]
    for row in summary:
        cells = [row["model"], str(row["batch_size"]), str(row["T"]),
                 _span(row["original"]) if row["original"] else "—"]
        for arm in arms:
            values = row["arms"].get(arm)
            ratio = row["ratios"].get(arm)
            cells += [_span(values) if values else "—",
                      f"**{ratio:.2f}×**" if ratio else "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def targets_markdown(summary):
    """One row per model and T: the fastest faithful mode and the fast + XLA
    mode, each as examples/s and × the original (medians over rounds)."""
    lines = ["| model | B | T | original ex/s | fastest faithful mode | ex/s | × original "
             "| fast + XLA ex/s | × original |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in summary:
        original = row["original_median"]
        faithful = {a: statistics.median(v) for a, v in row["arms"].items()
                    if a.split("+")[0] == "faithful"}
        cells = [row["model"], str(row["batch_size"]), str(row["T"]),
                 f"{original:,.0f}" if original else "—"]
        if faithful and original:
            best = max(faithful, key=faithful.get)
            cells += [best.replace("+", " + "), f"{faithful[best]:,.0f}",
                      f"**{faithful[best] / original:.2f}×**"]
        else:
            cells += ["—", "—", "—"]
        fast = row["arms"].get("fast+xla")
        if fast and original:
            cells += [f"{statistics.median(fast):,.0f}",
                      f"{statistics.median(fast) / original:.2f}×"]
        else:
            cells += ["—", "—"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
