#!/usr/bin/env python3
"""Write a flame graph (standalone SVG, hover titles) of a symbolized pprof.

usage: flamegraph.py PROFILE.pb.gz OUT.svg [--title TEXT]

Frames are named from the profile's Function/Line records (inline frames
included, marked "(inline)"); a location without them shows as
mapping+0xaddress.  Sample value: the first sample type.
"""
import argparse
import html
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pprof_decode import parse  # noqa: E402

WIDTH, ROW = 1200, 17


def frame_names(p, loc_id):
    """Names of one location, outermost first (inline frames expanded)."""
    loc = p['locations'].get(loc_id, {})
    lines = loc.get('lines', [])
    if not lines:
        m = p['mappings'].get(loc.get(2, 0))
        base = os.path.basename(m['filename']) if m and m['filename'] else '?'
        return ['%s+0x%x' % (base, loc.get(3, 0))]
    names = []
    for i, ln in enumerate(lines):  # innermost first in pprof
        fn = p['functions'].get(ln.get(1, 0), {})
        name = fn.get('name') or '?'
        names.append(name + (' (inline)' if i < len(lines) - 1 else ''))
    return list(reversed(names))


def build_tree(p):
    root = {'name': 'all', 'value': 0, 'children': {}}
    for s in p['samples']:
        v = s['values'][0] if s['values'] else 1
        stack = []
        for lid in reversed(s['locs']):  # root first
            stack.extend(frame_names(p, lid))
        node = root
        node['value'] += v
        for name in stack:
            node = node['children'].setdefault(name, {'name': name, 'value': 0, 'children': {}})
            node['value'] += v
    return root


def color(name):
    h = sum(ord(c) for c in name) % 60
    return 'rgb(%d,%d,%d)' % (220 + h % 35, 90 + h * 2, 40 + h)


def render(root, title):
    rects, depth_max = [], 0

    def walk(node, x, depth):
        nonlocal depth_max
        depth_max = max(depth_max, depth)
        w = node['value'] / root['value'] * (WIDTH - 20) if root['value'] else 0
        if w >= 0.3:
            rects.append((x, depth, w, node['name'], node['value']))
        cx = x
        for child in sorted(node['children'].values(), key=lambda c: c['name']):
            walk(child, cx, depth + 1)
            cx += child['value'] / root['value'] * (WIDTH - 20) if root['value'] else 0

    walk(root, 10, 0)
    height = (depth_max + 1) * ROW + 60
    out = ['<?xml version="1.0" standalone="no"?>',
           '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="monospace" font-size="11">'
           % (WIDTH, height),
           '<rect width="100%" height="100%" fill="#f8f8f8"/>',
           '<text x="%d" y="22" text-anchor="middle" font-size="15">%s</text>' % (WIDTH / 2, html.escape(title))]
    for x, depth, w, name, value in rects:
        y = height - 20 - (depth + 1) * ROW
        pct = 100.0 * value / root['value']
        label = html.escape(name if len(name) * 6.5 < w else name[:max(int(w / 6.5) - 2, 0)] + '..')
        out.append('<g><title>%s (%.2f%%)</title><rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" '
                   'rx="2"/>' % (html.escape(name), pct, x, y, w, ROW - 1, color(name)))
        if w > 20:
            out.append('<text x="%.1f" y="%d">%s</text>' % (x + 3, y + 12, label))
        out.append('</g>')
    out.append('</svg>')
    return '\n'.join(out) + '\n'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('profile')
    ap.add_argument('out')
    ap.add_argument('--title', default='CPU flame graph')
    a = ap.parse_args()
    p = parse(a.profile)
    root = build_tree(p)
    if not root['value']:
        sys.exit('flamegraph.py: %s has no samples' % a.profile)
    with open(a.out, 'w') as f:
        f.write(render(root, a.title))


if __name__ == '__main__':
    main()
