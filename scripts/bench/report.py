#!/usr/bin/env python3
"""Host side of the mmview benchmark: CSV extraction, plot, tables.

The guest program mmview-bench prints its results as "# CSV,<row>" lines (one
"# CSV,figure,case,..." header first) and facts about the machine as
"# META,<key>,<value>" lines. This script turns a console log into files and
the files into a plot and tables. Standard library only.

usage:
  report.py extract LOG OUT.csv [--meta OUT.meta] [--set KEY=VALUE ...]
      the CSV rows of LOG (header first) to OUT.csv, the META lines and the
      --set pairs to OUT.meta (KEY=VALUE lines); fails if LOG has no header
  report.py plot OUT.svg RUN.csv... [--unused UNUSED.csv]
      one SVG, one panel per figure, one series per run (arch); RUN.meta next
      to RUN.csv labels it; --unused adds the =y/=n comparison of figure 6
  report.py table RUN.csv...
      Markdown tables of the ratios and of the baselines, a column per run
  report.py compare OUT.csv --on Y.csv... --off N.csv...
      figure 6: the normalised figures of boots with CONFIG_MMVIEW=y and =n
      (median over the boots of each) and their ratio, to OUT.csv; prints a
      Markdown table
  report.py plot-unused OUT.svg COMPARE.csv
      the comparison as a one-panel SVG (COMPARE.meta next to it labels it)
"""
import csv
import html
import math
import os
import re
import sys

COLUMNS = ("figure,case,params,metric,unit,reps,median,min,max,baseline,"
           "baseline_median,ratio_median,ratio_min,ratio_max,note").split(",")
KERNEL_LINE = re.compile(r"^\[\s*\d+\.\d+\]")
NUMERIC = ("reps", "median", "min", "max", "baseline_median",
           "ratio_median", "ratio_min", "ratio_max")


# ---------------------------------------------------------------- files

def extract(log, out_csv, out_meta=None, extra=()):
    """Writes the CSV rows (and META pairs) of a console log; row count."""
    header, rows, meta, bad = None, [], {}, 0
    with open(log, errors="replace") as f:
        for line in f:
            line = line.rstrip("\r\n")
            if KERNEL_LINE.match(line):
                continue
            if line.startswith("# META,"):
                _, key, value = line.split(",", 2)
                meta[key] = value
            elif line.startswith("# CSV,"):
                fields = line[len("# CSV,"):].split(",")
                if header is None and fields[0] == "figure":
                    header = fields
                elif header is not None and len(fields) == len(header):
                    rows.append(fields)
                else:
                    bad += 1  # e.g. a kernel message cut into the line
    if header is None:
        sys.exit(f"{log}: no '# CSV,figure,...' header: the benchmark did not run")
    if header != COLUMNS:
        print(f"{log}: note: CSV columns differ from this script's: {header}",
              file=sys.stderr)
    if bad:
        print(f"{log}: warning: {bad} garbled CSV line(s) left out", file=sys.stderr)
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    if out_meta:
        for pair in extra:
            key, _, value = pair.partition("=")
            meta[key] = value
        with open(out_meta, "w") as f:
            for key, value in meta.items():
                f.write(f"{key}={value}\n")
    return len(rows)


def load(path):
    """The rows of a result CSV (numbers as floats, None when empty)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key in NUMERIC:
            value = row.get(key, "")
            row[key] = float(value) if value not in ("", None) else None
        row["p"] = dict(kv.split("=", 1) for kv in row["params"].split(";") if "=" in kv)
    return rows


def load_meta(csv_path):
    meta = {}
    path = os.path.splitext(csv_path)[0] + ".meta"
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                key, _, value = line.rstrip("\n").partition("=")
                meta[key] = value
    meta.setdefault("arch", os.path.basename(csv_path))
    return meta


def find(rows, figure, case, metric=None, **params):
    for r in rows:
        if r["figure"] == figure and r["case"] == case and \
                (metric is None or r["metric"] == metric) and \
                all(r["p"].get(k) == str(v) for k, v in params.items()):
            return r
    return None


def run_label(meta):
    mem = meta.get("mem_total_kib", "")
    mem = f"{int(mem) / 1048576:.1f} GiB" if mem.isdigit() else "?"
    return f"{meta.get('arch', '?')} ({meta.get('cpus', '?')} vCPU, {mem})"


# ---------------------------------------------------------------- tables

def fmt(value, digits=3):
    if value is None:
        return "n/a"
    if value == 0:
        return "0"
    mag = math.floor(math.log10(abs(value)))
    return f"{value:.{max(0, digits - 1 - mag)}f}"


def fmt_range(median, low, high):
    if median is None:
        return "n/a"
    return f"{fmt(median)} ({fmt(low)}–{fmt(high)})"


def table(paths):
    runs = [(load_meta(p), load(p)) for p in paths]
    labels = [run_label(m) for m, _ in runs]
    keys = []
    for _, rows in runs:
        for r in rows:
            key = (r["figure"], r["case"], r["params"], r["metric"])
            if key not in keys:
                keys.append(key)

    def row_of(rows, key):
        for r in rows:
            if (r["figure"], r["case"], r["params"], r["metric"]) == key:
                return r
        return None

    out = ["| run | date | guest | kernel | clock | reps | guest run time | command |",
           "|---|---|---|---|---|---|---|---|"]
    for (meta, _), label in zip(runs, labels):
        out.append(f"| {label} | {meta.get('date', '?')} | {meta.get('guest_mem', '?')} RAM, "
                   f"{meta.get('cpus', '?')} vCPU, QEMU TCG | {meta.get('kernel', '?')} "
                   f"{meta.get('kernel_version', '')} | {meta.get('clock', '?')} | "
                   f"{meta.get('reps', '?')} | {meta.get('run_seconds', '?')} s | "
                   f"`{meta.get('command', '?')}` |")
    out += ["", "Ratios (subject / baseline, same boot): median (min–max) over repetitions; "
            "n/a: not measurable on that kernel.", "",
           "| figure | case | params | metric | baseline | " + " | ".join(labels) + " |",
           "|---|---|---|---|---|" + "---|" * len(labels)]
    for key in keys:
        cells, baseline = [], None
        for _, rows in runs:
            r = row_of(rows, key)
            if r is None or not r["baseline"]:
                cells.append(None)
                continue
            baseline = r["baseline"]
            cells.append(fmt_range(r["ratio_median"], r["ratio_min"], r["ratio_max"]))
        if baseline:
            out.append(f"| {key[0]} | {key[1]} | {key[2].replace(';', ' ')} | {key[3]} | "
                       f"{baseline} | " + " | ".join(c or "" for c in cells) + " |")
    notes = sorted({r["note"] for _, rows in runs for r in rows if r.get("note")})
    if notes:
        out += ["", "Why values are missing: " + "; ".join(notes) + "."]
    out += ["", "Baselines (absolute; emulated time under TCG, compare only within a column): "
            "median (min–max).", "",
            "| figure | case | params | metric | unit | " + " | ".join(labels) + " |",
            "|---|---|---|---|---|" + "---|" * len(labels)]
    for key in keys:
        cells, unit = [], ""
        for _, rows in runs:
            r = row_of(rows, key)
            if r is None or r["baseline"]:
                cells.append(None)
                continue
            unit = r["unit"]
            cells.append(fmt_range(r["median"], r["min"], r["max"]))
        if any(cells):
            out.append(f"| {key[0]} | {key[1]} | {key[2].replace(';', ' ')} | {key[3]} | "
                       f"{unit} | " + " | ".join(c or "" for c in cells) + " |")
    return "\n".join(out) + "\n"


def compare(on_paths, off_paths, out_path):
    """Figure 6 across boots: per case, the median over the boots of each
    kernel of the normalised medians, and the ratio =y / =n; the range of a
    side is the spread of its boots' medians."""
    on_runs, off_runs = [load(p) for p in on_paths], [load(p) for p in off_paths]
    keys = []
    for r in on_runs[0]:
        if r["figure"] == "unused" and r["baseline"]:
            keys.append((r["case"], r["params"], r["metric"], r["baseline"]))

    def side(runs, key):
        meds = []
        for rows in runs:
            r = next((x for x in rows if (x["case"], x["params"], x["metric"], x["baseline"]) == key),
                     None)
            if r and r["ratio_median"]:
                meds.append(r["ratio_median"])
        if not meds:
            return None, None, None
        meds.sort()
        n = len(meds)
        med = meds[n // 2] if n % 2 else (meds[n // 2 - 1] + meds[n // 2]) / 2
        return med, meds[0], meds[-1]

    out_rows = []
    for key in keys:
        (y, y_lo, y_hi), (n, n_lo, n_hi) = side(on_runs, key), side(off_runs, key)
        ratio = low = high = None
        if y and n:
            ratio, low, high = y / n, y_lo / n_hi, y_hi / n_lo
        out_rows.append(list(key) + [y, y_lo, y_hi, n, n_lo, n_hi, ratio, low, high])
    header = ["case", "params", "metric", "baseline",
              "on_norm_median", "on_norm_min", "on_norm_max",
              "off_norm_median", "off_norm_min", "off_norm_max",
              "on_over_off", "on_over_off_low", "on_over_off_high"]
    with open(out_path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for row in out_rows:
            w.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)
                        for v in row])
    lines = [f"{len(on_runs)} boot(s) with CONFIG_MMVIEW=y, {len(off_runs)} with =n; each figure "
             "is a time in CPU-loop iterations (median over its boot's repetitions); "
             "per kernel: median (min–max) over its boots; last column: =y / =n, "
             "range from the extremes.", "",
             "| case | params | =y | =n | =y / =n |",
             "|---|---|---|---|---|"]
    for row in out_rows:
        lines.append(f"| {row[0]} | {row[1].replace(';', ' ')} | "
                     f"{fmt_range(row[4], row[5], row[6])} | {fmt_range(row[7], row[8], row[9])} | "
                     f"{fmt_range(row[10], row[11], row[12])} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- SVG

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"]
DASHES = ["", "6,4", "2,3", "8,3,2,3"]
MARKERS = ["circle", "square", "diamond", "triangle"]


class Svg:
    def __init__(self, width, height):
        self.width, self.height, self.parts = width, height, []

    def add(self, element):
        self.parts.append(element)

    def text(self, x, y, s, size=11, anchor="start", weight="normal", rotate=None, color="#222"):
        transform = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                 f'font-weight="{weight}" fill="{color}"{transform}>{html.escape(str(s))}</text>')

    def line(self, x1, y1, x2, y2, color="#222", width=1, dash=""):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                 f'stroke="{color}" stroke-width="{width}"{d}/>')

    def polyline(self, points, color, dash=""):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.add(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="1.5"{d}/>')

    def marker(self, x, y, kind, color, r=3.5):
        if kind == "square":
            self.add(f'<rect x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r:.1f}" height="{2 * r:.1f}" fill="{color}"/>')
        elif kind == "diamond":
            self.add(f'<polygon points="{x:.1f},{y - r - 1:.1f} {x + r + 1:.1f},{y:.1f} {x:.1f},{y + r + 1:.1f} '
                     f'{x - r - 1:.1f},{y:.1f}" fill="{color}"/>')
        elif kind == "triangle":
            self.add(f'<polygon points="{x:.1f},{y - r - 1:.1f} {x + r + 1:.1f},{y + r:.1f} '
                     f'{x - r - 1:.1f},{y + r:.1f}" fill="{color}"/>')
        else:
            self.add(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{color}"/>')

    def render(self):
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
                f'viewBox="0 0 {self.width} {self.height}" font-family="sans-serif">\n'
                f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(self.parts) + "\n</svg>\n")


def log_ticks(lo, hi):
    """Tick values for a log axis from lo to hi: round numbers, finer for
    narrow ranges, at most 9."""
    decades = math.log10(hi / lo)
    sets = ((1, 1.1, 1.2, 1.5, 2, 3, 5, 7, 8, 9), (1, 1.5, 2, 3, 5, 7), (1, 2, 5), (1,))
    start = 0 if decades < 0.5 else 1 if decades < 1.2 else 2 if decades < 3 else 3
    for mults in sets[start:]:
        ticks = [m * 10 ** e
                 for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
                 for m in mults if lo <= m * 10 ** e <= hi]
        if len(ticks) <= 9:
            return ticks
    return ticks


def tick_label(v):
    if 1e-3 <= v < 1e5:
        return f"{v:g}"
    mantissa, exponent = f"{v:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


class Panel:
    """A plot area with a log y axis; x given in [0, 1] by the caller."""

    def __init__(self, svg, x, y, w, h, title, ylabel, values, xlabel="", legend=()):
        cols = 2 if len(legend) > 2 else max(1, len(legend))
        band = 13 * math.ceil(len(legend) / cols) + 4 if legend else 0
        self.svg, self.x0, self.y0, self.w, self.h = svg, x + 58, y + 28 + band, w - 72, h - 78 - band
        svg.text(x + 8, y + 16, title, size=13, weight="bold")
        for i, (label, color, marker, dash) in enumerate(legend):
            lx = self.x0 + (i % cols) * (self.w / cols)
            ly = y + 32 + 13 * (i // cols)
            svg.line(lx, ly - 4, lx + 18, ly - 4, color=color, width=1.5, dash=dash)
            svg.marker(lx + 9, ly - 4, marker, color, r=3)
            svg.text(lx + 24, ly, label, size=10)
        svg.add(f'<rect x="{self.x0}" y="{self.y0}" width="{self.w}" height="{self.h}" '
                f'fill="none" stroke="#888"/>')
        svg.text(x + 14, self.y0 + self.h / 2, ylabel, size=11, anchor="middle", rotate=-90)
        if xlabel:
            svg.text(self.x0 + self.w / 2, self.y0 + self.h + 48, xlabel, size=11, anchor="middle")
        values = [v for v in values if v and v > 0]
        self.empty = not values
        lo, hi = (min(values), max(values)) if values else (0.5, 2)
        lo, hi = min(lo, 1.0) / 1.3, max(hi, 1.0) * 1.3
        self.lo, self.hi = math.log10(lo), math.log10(hi)
        for t in log_ticks(lo, hi):
            ty = self.y(t)
            svg.line(self.x0, ty, self.x0 + self.w, ty, color="#e4e4e4")
            svg.text(self.x0 - 5, ty + 4, tick_label(t), size=10, anchor="end")
        if lo < 1 < hi:
            svg.line(self.x0, self.y(1), self.x0 + self.w, self.y(1), color="#999", dash="4,3")

    def y(self, v):
        return self.y0 + self.h - (math.log10(v) - self.lo) / (self.hi - self.lo) * self.h

    def x(self, f):
        return self.x0 + f * self.w

    def point(self, fx, med, low, high, color, marker):
        """A median with a min-max whisker; values <= 0 cannot be shown."""
        px = self.x(fx)
        if med is None or med <= 0:
            self.svg.text(px, self.y0 + self.h - 4, "≤0", size=9, anchor="middle", color=color)
            return
        if low is not None and high is not None and high > 0:
            bottom = self.y(low) if low > 0 else self.y0 + self.h
            self.svg.line(px, bottom, px, self.y(high), color=color)
            for v in (low, high):
                if v > 0:
                    self.svg.line(px - 3, self.y(v), px + 3, self.y(v), color=color)
        self.svg.marker(px, self.y(med), marker, color)

    def note(self, text):
        self.svg.text(self.x0 + self.w / 2, self.y0 + self.h / 2, text, size=11,
                      anchor="middle", color="#b00")


def categorical(svg, box, title, ylabel, runs, cats, xlabel=""):
    """cats: list of (label, fn(rows) -> row or None); a point per run."""
    values = []
    for _, rows in runs:
        for _, get in cats:
            r = get(rows)
            if r:
                values += [r["ratio_median"], r["ratio_min"], r["ratio_max"]]
    legend = [(run_label(m), PALETTE[j % len(PALETTE)], MARKERS[j % len(MARKERS)], "")
              for j, (m, _) in enumerate(runs)]
    p = Panel(svg, *box, title, ylabel, values, xlabel=xlabel, legend=legend)
    n = len(cats)
    for i, (label, get) in enumerate(cats):
        fx = (i + 0.5) / n
        lines = label.split("\n")
        for k, part in enumerate(lines):
            svg.text(p.x(fx), p.y0 + p.h + 14 + 11 * k, part, size=9.5, anchor="middle")
        any_point = False
        for j, (meta, rows) in enumerate(runs):
            r = get(rows)
            off = (j - (len(runs) - 1) / 2) * 0.12 / max(1, n / 4)
            if r and r["ratio_median"] is not None:
                p.point(fx + off, r["ratio_median"], r["ratio_min"], r["ratio_max"],
                        PALETTE[j % len(PALETTE)], MARKERS[j % len(MARKERS)])
                any_point = True
        if not any_point:
            svg.text(p.x(fx), p.y0 + p.h / 2, "n/a", size=11, anchor="middle", color="#b00")


def plot(out, paths, unused_path=None):
    runs = [(load_meta(p), load(p)) for p in paths]
    W, H = 1000, 1150
    svg = Svg(W, H)
    date = runs[0][0].get("date", "") if runs else ""
    svg.text(20, 26, f"mmview benchmarks under QEMU TCG, {date}", size=16, weight="bold")
    svg.text(20, 44, "Every figure is a ratio against its baseline measured in the same boot: "
             "median over repetitions, whiskers min–max. Log scales; dashed line: ratio 1.",
             size=11)
    na = "mmview: n/a on this kernel (EOPNOTSUPP)"
    pw, ph, top = 490, 360, 60
    sizes = sorted({int(r["p"]["s_mib"]) for _, rows in runs for r in rows
                    if r["figure"] == "create" and "s_mib" in r["p"]})

    def sx(s):
        if len(sizes) < 2:
            return 0.5
        a, b = math.log2(sizes[0]), math.log2(sizes[-1])
        return 0.06 + 0.88 * (math.log2(s) - a) / (b - a)

    def lines_panel(box, title, ylabel, xlabel, series):
        """series: (label, color, marker, dash, [(s, median, min, max)])"""
        values = [v for *_, pts in series for pt in pts for v in pt[1:]]
        legend = [(label + ("" if pts else " (n/a)"), color, marker, dash)
                  for label, color, marker, dash, pts in series]
        p = Panel(svg, *box, title, ylabel, values, xlabel=xlabel, legend=legend)
        for s in sizes:
            svg.text(p.x(sx(s)), p.y0 + p.h + 14, str(s), size=10, anchor="middle")
        for label, color, marker, dash, pts in series:
            if pts:
                svg.polyline([(p.x(sx(s)), p.y(m)) for s, m, _, _ in pts], color, dash)
                for s, m, lo, hi in pts:
                    p.point(sx(s), m, lo, hi, color, marker)
        if p.empty:
            p.note(na)

    # 1: CREATE / fork along S, a line per (run, U).
    series = []
    for j, (meta, rows) in enumerate(runs):
        for k, u in enumerate((1, 10, 100)):
            pts = []
            for s in sizes:
                r = find(rows, "create", "create", "time", s_mib=s, u_pct=u)
                if r and r["ratio_median"]:
                    pts.append((s, r["ratio_median"], r["ratio_min"], r["ratio_max"]))
            series.append((f"{meta.get('arch')}, U = {u} %", PALETTE[k],
                           MARKERS[j % len(MARKERS)], DASHES[j % len(DASHES)], pts))
    lines_panel((5, top, pw, ph), "1. Snapshot creation: MMVIEW_CREATE / fork()", "time ratio",
                "touched memory S (MiB), of which U % unshared", series)

    # 1b: times along S in units of fork() at the smallest S, same boot.
    fixed = next((r["p"].get("u_mib") for _, rows in runs for r in rows
                  if r["case"] == "create_fixed_unshared"), "?")
    kinds = [("fork", "u_pct", "100", "fork()"),
             ("create", "u_pct", "100", "CREATE, U = 100 %"),
             ("create_fixed_unshared", "u_mib", fixed, f"CREATE, {fixed} MiB unsh.")]
    series = []
    for j, (meta, rows) in enumerate(runs):
        unit = find(rows, "create", "fork", "time", s_mib=sizes[0], u_pct=100) if sizes else None
        unit = unit and unit["median"]
        for k, (case, key, value, label) in enumerate(kinds):
            pts = []
            for s in sizes:
                r = find(rows, "create", case, "time", s_mib=s, **{key: value})
                if r and r["median"] and unit:
                    pts.append((s, r["median"] / unit, r["min"] / unit, r["max"] / unit))
            series.append((f"{meta.get('arch')} {label}", PALETTE[k + 3],
                           MARKERS[j % len(MARKERS)], DASHES[j % len(DASHES)], pts))
    lines_panel((5 + pw, top, pw, ph), "1b. Creation cost along S, in fork()s of the smallest S",
                f"time / fork() of {sizes[0] if sizes else '?'} MiB",
                f"touched memory S (MiB); {fixed} MiB unsh.: the rest shared", series)

    # 2-4: one ratio each.
    categorical(svg, (5, top + ph, pw, ph), "2–4. Switch, first touch, copy-on-write",
                "time ratio", runs, [
                    ("MIGRATE round trip\n÷ getppid()",
                     lambda rows: find(rows, "switch", "migrate_round_trip")),
                    ("first read in a view\n÷ minor fault",
                     lambda rows: find(rows, "first_touch", "view_first_touch")),
                    ("first store in a view\n÷ first store after fork",
                     lambda rows: find(rows, "cow", "view_cow")),
                ])

    # 5: the database case.
    def db(case, metric):
        return lambda rows: find(rows, "database", case, metric)
    table_mib = next((r["p"].get("table_mib") for _, rows in runs for r in rows
                      if r["figure"] == "database"), "?")
    categorical(svg, (5 + pw, top + ph, pw, ph),
                f"5. Database: snapshots of a {table_mib} MiB table under writes", "ratio", runs, [
                    ("latency\nmemcpy", db("memcpy", "snapshot_latency")),
                    ("latency\nmmview", db("mmview", "snapshot_latency")),
                    ("writes\nfork", db("fork", "writer_throughput")),
                    ("writes\nmemcpy", db("memcpy", "writer_throughput")),
                    ("writes\nmmview", db("mmview", "writer_throughput")),
                    ("memory\nmemcpy", db("memcpy", "memory")),
                    ("memory\nmmview", db("mmview", "memory")),
                ], xlabel="latency, memory ÷ fork(); writer throughput ÷ writer alone")

    # 6: cost when unused.
    cases = UNUSED_CASES
    box = (5, top + 2 * ph, pw, ph)
    if unused_path:
        u = load_unused(unused_path)
        categorical(svg, box, "6. Cost when unused: CONFIG_MMVIEW=y ÷ =n",
                    "ratio of normalised times", [(u["meta"], u["rows"])],
                    [(label, (lambda c: lambda rows: rows.get(c))(case)) for case, label in cases],
                    xlabel="each normalised to a CPU loop in its own boot")
    else:
        categorical(svg, box, "6. Faults, fork(), syscall in CPU-loop iterations",
                    "time ÷ one loop iteration", runs,
                    [(label, (lambda c: lambda rows: find(rows, "unused", c))(case))
                     for case, label in cases],
                    xlabel="=y vs =n: scripts/bench/unused-cost.sh")

    # The runs.
    x, y = 5 + pw + 20, top + 2 * ph + 30
    svg.text(x, y, "Runs", size=13, weight="bold")
    for meta, _ in runs:
        y += 18
        svg.text(x, y, run_label(meta), size=11, weight="bold")
        for key in ("kernel", "date", "command", "guest_mem", "clock", "reps", "run_seconds"):
            if meta.get(key):
                y += 14
                svg.text(x + 10, y, f"{key}: {meta[key]}"[:80], size=10)
    with open(out, "w") as f:
        f.write(svg.render())


def plot_unused(out, compare_path):
    """A one-panel SVG of a compare CSV (figure 6)."""
    u = load_unused(compare_path)
    svg = Svg(520, 440)
    meta = u["meta"]
    categorical(svg, (5, 10, 510, 400), f"Cost when unused, {meta.get('arch', '?')}: "
                "CONFIG_MMVIEW=y ÷ =n", "ratio of normalised times", [(meta, u["rows"])],
                [(label, (lambda c: lambda rows: rows.get(c))(case)) for case, label in UNUSED_CASES],
                xlabel="each time normalised to a CPU loop in its own boot; 1 = no cost")
    svg.text(10, 432, f"{meta.get('date', '')}  {meta.get('command', '')}", size=10)
    with open(out, "w") as f:
        f.write(svg.render())


UNUSED_CASES = [("fault_read", "read fault\n(zero page)"), ("fault_write", "write fault\n(new page)"),
                ("fork", "fork()"), ("getppid", "getppid()")]


def load_unused(path):
    """The compare CSV as rows shaped like result rows (ratio = =y / =n)."""
    out = {"meta": load_meta(path), "rows": {}}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            num = (lambda v: float(v) if v else None)
            out["rows"][r["case"]] = {"ratio_median": num(r["on_over_off"]),
                                      "ratio_min": num(r["on_over_off_low"]),
                                      "ratio_max": num(r["on_over_off_high"])}
    return out


# ---------------------------------------------------------------- main

def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    cmd, args = argv[1], argv[2:]
    if cmd == "extract" and len(args) >= 2:
        meta, extra, rest = None, [], list(args[2:])
        while rest:
            opt = rest.pop(0)
            if opt == "--meta" and rest:
                meta = rest.pop(0)
            elif opt == "--set" and rest:
                extra.append(rest.pop(0))
            else:
                sys.exit(f"extract: unexpected {opt!r}")
        n = extract(args[0], args[1], meta, extra)
        print(f"{args[1]}: {n} rows")
    elif cmd == "plot" and len(args) >= 2:
        unused = None
        if "--unused" in args:
            i = args.index("--unused")
            unused = args[i + 1]
            args = args[:i] + args[i + 2:]
        plot(args[0], args[1:], unused)
        print(args[0])
    elif cmd == "plot-unused" and len(args) == 2:
        plot_unused(*args)
        print(args[0])
    elif cmd == "table" and args:
        sys.stdout.write(table(args))
    elif cmd == "compare" and "--on" in args and "--off" in args and args[0] not in ("--on", "--off"):
        i, j = args.index("--on"), args.index("--off")
        on = args[i + 1:j] if i < j else args[i + 1:]
        off = args[j + 1:] if i < j else args[j + 1:i]
        if not on or not off:
            print(__doc__, file=sys.stderr)
            return 2
        sys.stdout.write(compare(on, off, args[0]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
