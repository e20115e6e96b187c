#!/usr/bin/env python3
"""Kernel frames of a symbolized profile against `perf script`'s names.

  kernel_vs_perf.py --text 0xADDR --perf-script FILE PROFILE...

PROFILE: symbolized pprof files (GET /profiles or `symbolize pprof`), whose
kernel locations hold offsets from _text (mapping "[kernel.kallsyms]") and
module offsets ("[kmod:NAME]").  FILE: `perf script -F ip,sym` of a recording
of the same workload: every kernel address perf printed, with its name.
Each kernel frame of ours (weighted by its sample count) whose runtime
address (offset + _text) perf also saw is compared by function name.
Prints JSON: frames, compared, agree, named, examples of disagreement."""
import argparse, json, os, re, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'contrib'))
from pprof_decode import parse  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument('--text', required=True)
ap.add_argument('--perf-script', required=True)
ap.add_argument('profiles', nargs='+')
a = ap.parse_args()
text = int(a.text, 16)

perf = {}
line_re = re.compile(r'^\s*([0-9a-f]{16})\s+(\S+)')
for line in open(a.perf_script, errors='replace'):
    m = line_re.match(line)
    if m and m.group(1).startswith('ffff'):
        name = m.group(2)
        if name != '[unknown]':
            perf[int(m.group(1), 16)] = name

frames = compared = agree = named = modules = 0
bad = {}
for path in a.profiles:
    p = parse(path)
    for s in p['samples']:
        n = s['values'][0] if s['values'] else 1
        for lid in s['locs']:
            l = p['locations'][lid]
            m = p['mappings'].get(l.get(2, 0), {})
            fname = m.get('filename', '')
            if fname != '[kernel.kallsyms]' and not fname.startswith('[kmod:'):
                continue
            frames += n
            modules += n if fname.startswith('[kmod:') else 0
            ours = p['functions'][l['lines'][0][1]]['name'] if l['lines'] else None
            named += n if ours else 0
            if fname != '[kernel.kallsyms]':
                continue
            addr = (l.get(3, 0) + text) & (2**64 - 1)
            theirs = perf.get(addr)
            if theirs is None:
                continue
            compared += n
            if ours == theirs:
                agree += n
            elif len(bad) < 10:
                bad['0x%x' % addr] = [ours, theirs]
print(json.dumps({'frames': frames, 'named': named, 'compared': compared, 'agree': agree,
                  'module_frames': modules, 'perf_addresses': len(perf), 'disagree': bad}))
