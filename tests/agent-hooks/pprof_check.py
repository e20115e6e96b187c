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
import argparse, gzip, json, subprocess, sys
from collections import Counter


def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1
        v |= (c & 0x7f) << s; s += 7
        if c < 0x80:
            return v, i


def fields(b):
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i); v = b[i:i + n]; i += n
        elif wt == 1:
            v = int.from_bytes(b[i:i + 8], 'little'); i += 8
        elif wt == 5:
            v = int.from_bytes(b[i:i + 4], 'little'); i += 4
        else:
            raise ValueError('wire type %d' % wt)
        yield f, wt, v


def ints(wt, v):
    if wt == 0:
        return [v]
    out, i = [], 0
    while i < len(v):
        x, i = varint(v, i); out.append(x)
    return out


def parse(path):
    data = open(path, 'rb').read()
    if data[:2] == b'\x1f\x8b':
        data = gzip.decompress(data)
    p = {'samples': [], 'mappings': {}, 'locations': {}, 'strings': [], 'comments': []}
    for f, wt, v in fields(data):
        if f == 2:
            s = {'locs': [], 'values': [], 'labels': []}
            for g, gw, gv in fields(v):
                if g == 1: s['locs'] += ints(gw, gv)
                elif g == 2: s['values'] += ints(gw, gv)
                elif g == 3:
                    lab = dict((h, hv) for h, _, hv in fields(gv)); s['labels'].append(lab)
            p['samples'].append(s)
        elif f == 3:
            m = dict((g, gv) for g, _, gv in fields(v)); p['mappings'][m.get(1, 0)] = m
        elif f == 4:
            l = dict((g, gv) for g, _, gv in fields(v) if g != 4); p['locations'][l.get(1, 0)] = l
        elif f == 6:
            p['strings'].append(v.decode('utf-8', 'replace'))
        elif f == 13:
            p['comments'] += ints(wt, v)
    st = p['strings']
    for m in p['mappings'].values():
        m['build_id'] = st[m.get(6, 0)]; m['filename'] = st[m.get(5, 0)]
    for s in p['samples']:
        s['labels'] = {st[l.get(1, 0)]: st[l.get(2, 0)] for l in s['labels']}
    p['comments'] = [st[c] for c in p['comments']]
    return p


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
