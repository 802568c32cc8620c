#!/usr/bin/env python3
"""Draws docs/convergence.svg from the load figures in PERFORMANCE.md (no plotting library needed)."""
points = {  # clients: (sotw converge s, delta converge s, sotw KiB/client, delta KiB/client)
    1000: (0.60, 0.60, None, None),
    5000: (3.09, 1.88, 54.5, 51.2),
    10000: (3.82, 3.53, 57.3, 61.0),
}
gcp = {1000: 0.9, 5000: 3.75}  # go-control-plane, from the issue (5,000: 3.3-4.2 s, middle)
W, H, L, B = 560, 300, 60, 40
def x(c): return L + (c / 10000) * (W - L - 20)
def y(s): return H - B - (s / 5) * (H - B - 20)
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<line x1="{L}" y1="{H-B}" x2="{W-10}" y2="{H-B}" stroke="black"/>',
       f'<line x1="{L}" y1="{H-B}" x2="{L}" y2="10" stroke="black"/>',
       f'<text x="{W/2}" y="{H-8}" text-anchor="middle">simulated sidecars</text>',
       f'<text x="14" y="{H/2}" transform="rotate(-90 14 {H/2})" text-anchor="middle">all converged after connect (s)</text>']
for c in (0, 2500, 5000, 7500, 10000):
    out.append(f'<text x="{x(c)}" y="{H-B+15}" text-anchor="middle">{c}</text>')
for s in range(6):
    out.append(f'<text x="{L-6}" y="{y(s)+4}" text-anchor="end">{s}</text>')
def line(pts, color, label, ly):
    d = " ".join(f"{x(c)},{y(v)}" for c, v in pts)
    out.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
    for c, v in pts:
        out.append(f'<circle cx="{x(c)}" cy="{y(v)}" r="3" fill="{color}"/>')
    out.append(f'<text x="{L+10}" y="{ly}" fill="{color}">{label}</text>')
line([(c, p[0]) for c, p in points.items()], "#1f77b4", "meshplane SotW", 24)
line([(c, p[1]) for c, p in points.items()], "#2ca02c", "meshplane delta", 40)
line(sorted(gcp.items()), "#d62728", "go-control-plane SotW (issue figures)", 56)
out.append("</svg>")
open("docs/convergence.svg", "w").write("\n".join(out))
