#!/usr/bin/env python3
"""Draws docs/convergence.svg and docs/memory.svg from the load figures in PERFORMANCE.md (no plotting
library needed). Run from the repository root after updating `points`."""
points = {  # clients: (sotw converge s, delta converge s, sotw KiB/client, delta KiB/client)
    1000: (0.20, 0.21, 37.7, 40.6),
    5000: (0.93, 1.00, 34.3, 35.5),
    10000: (1.85, 2.09, 34.6, 36.1),
}
# go-control-plane, from the issue: converge (5,000: 3.3-4.2 s, the middle) and RSS per client (SotW)
gcp_converge = {1000: 0.9, 5000: 3.75}
gcp_memory = {1000: 115, 5000: 110}  # delta at 5,000: 95
W, H, L, B = 560, 300, 60, 40


def chart(path, ylabel, ymax, ystep, series):
    def x(c): return L + (c / 10000) * (W - L - 20)
    def y(v): return H - B - (v / ymax) * (H - B - 20)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<line x1="{L}" y1="{H-B}" x2="{W-10}" y2="{H-B}" stroke="black"/>',
           f'<line x1="{L}" y1="{H-B}" x2="{L}" y2="10" stroke="black"/>',
           f'<text x="{W/2}" y="{H-8}" text-anchor="middle">simulated sidecars</text>',
           f'<text x="14" y="{H/2}" transform="rotate(-90 14 {H/2})" text-anchor="middle">{ylabel}</text>']
    for c in (0, 2500, 5000, 7500, 10000):
        out.append(f'<text x="{x(c)}" y="{H-B+15}" text-anchor="middle">{c}</text>')
    v = 0
    while v <= ymax:
        out.append(f'<text x="{L-6}" y="{y(v)+4}" text-anchor="end">{v:g}</text>')
        v += ystep
    for i, (pts, color, label) in enumerate(series):
        d = " ".join(f"{x(c)},{y(v)}" for c, v in pts)
        out.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
        for c, v in pts:
            out.append(f'<circle cx="{x(c)}" cy="{y(v)}" r="3" fill="{color}"/>')
        out.append(f'<text x="{L+10}" y="{24 + 16 * i}" fill="{color}">{label}</text>')
    out.append("</svg>")
    open(path, "w").write("\n".join(out))


chart("docs/convergence.svg", "all converged after connect (s)", 5, 1, [
    ([(c, p[0]) for c, p in points.items()], "#1f77b4", "meshplane SotW"),
    ([(c, p[1]) for c, p in points.items()], "#2ca02c", "meshplane delta"),
    (sorted(gcp_converge.items()), "#d62728", "go-control-plane SotW (issue figures)"),
])
chart("docs/memory.svg", "server RSS per sidecar (KiB)", 120, 20, [
    ([(c, p[2]) for c, p in points.items()], "#1f77b4", "meshplane SotW"),
    ([(c, p[3]) for c, p in points.items()], "#2ca02c", "meshplane delta"),
    (sorted(gcp_memory.items()), "#d62728", "go-control-plane SotW (issue figures)"),
])
