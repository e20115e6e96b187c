#!/usr/bin/env python3
"""Reads the agent's gzipped pprof files with an independent decoder (the
profile.proto wire format, written from the public schema) and checks them.

  pprof_check.py summary FILE...
      JSON: samples, mappings, labels seen, comments (first line each).
  pprof_check.py reach --build-id ID --exe ELF --function NAME --symbolize BIN FILE...
      JSON: samples with a frame in ID, and how many of them reach NAME
      (addresses symbolized with BIN against ELF; frame kind by position).
  pprof_check.py jit --map-dir DIR --symbolize BIN FILE...
      JSON: the names of JIT frames, resolved with `symbolize --perf-map`
      against the snapshot each JIT mapping names (perf-map:<sha256>).
"""
import argparse, json, os, subprocess, sys
from collections import Counter


sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'contrib'))
from pprof_decode import parse  # noqa: E402  (shared with contrib/flamegraph.py)


def frames(p, s):
    """(mapping, address, kind) per location of a sample, leaf first."""
    out = []
    for pos, lid in enumerate(s['locs']):
        l = p['locations'][lid]
        out.append((p['mappings'].get(l.get(2, 0)), l.get(3, 0), 'leaf' if pos == 0 else 'return'))
    return out


def symbolize(binary, args, addrs, kind):
    if not addrs:
        return {}
    cmd = [binary] + args + ['--json', '--inlines', '--kind', kind]
    out = subprocess.run(cmd, input=''.join('0x%x\n' % a for a in addrs), capture_output=True,
                         text=True, check=True).stdout.splitlines()
    res = {}
    for a, line in zip(addrs, out):
        res[a] = [fr.get('function') for fr in json.loads(line).get('frames', [])]
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('cmd')
    ap.add_argument('files', nargs='+')
    ap.add_argument('--build-id'); ap.add_argument('--exe'); ap.add_argument('--function')
    ap.add_argument('--symbolize'); ap.add_argument('--map-dir')
    a = ap.parse_args()
    profs = [parse(f) for f in a.files]
    if a.cmd == 'summary':
        labels, maps, total, complete_kinds = Counter(), set(), 0, Counter()
        for p in profs:
            for s in p['samples']:
                total += s['values'][0]
                for k, v in s['labels'].items():
                    labels[k] += 1
            for m in p['mappings'].values():
                maps.add((m['build_id'], m['filename']))
        print(json.dumps({'profiles': len(profs), 'samples': total,
                          'label_keys': sorted(labels),
                          'labels': sorted({'%s=%s' % kv for p in profs for s in p['samples']
                                            for kv in s['labels'].items()
                                            if kv[0] not in ('pid',)}),
                          'mappings': sorted(['%s %s' % m for m in maps]),
                          'comments': sorted({c.split('\n')[0].split(' host=')[0]
                                              for p in profs for c in p['comments']})}))
    elif a.cmd == 'reach':
        todo = {'leaf': set(), 'return': set()}
        for p in profs:
            for s in p['samples']:
                for m, addr, kind in frames(p, s):
                    if m and m['build_id'] == a.build_id:
                        todo[kind].add(addr)
        names = {k: symbolize(a.symbolize, ['-e', a.exe], sorted(v), k) for k, v in todo.items()}
        with_obj = reached = 0
        for p in profs:
            for s in p['samples']:
                fr = [(addr, kind) for m, addr, kind in frames(p, s)
                      if m and m['build_id'] == a.build_id]
                if not fr:
                    continue
                with_obj += s['values'][0]
                if any(a.function in names[k].get(addr, []) for addr, k in fr):
                    reached += s['values'][0]
        print(json.dumps({'samples_in_object': with_obj, 'reached': reached,
                          'fraction': reached / with_obj if with_obj else 0}))
    elif a.cmd == 'jit':
        found = Counter()
        for p in profs:
            by_map = {}
            for s in p['samples']:
                for m, addr, kind in frames(p, s):
                    if m and m['filename'].startswith('perf-map:'):
                        by_map.setdefault(m['filename'].split(':')[1], set()).add((addr, kind))
            for h, addrs in by_map.items():
                path = '%s/%s.map' % (a.map_dir, h)
                for kind in ('leaf', 'return'):
                    got = symbolize(a.symbolize, ['--perf-map', path],
                                    sorted(x for x, k in addrs if k == kind), kind)
                    for fs in got.values():
                        for n in fs:
                            if n:
                                found[n] += 1
        print(json.dumps({'names': [n for n, _ in found.most_common(50)]}))
    else:
        sys.exit('unknown command ' + a.cmd)


if __name__ == '__main__':
    main()
