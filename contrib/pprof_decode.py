"""A small decoder of pprof profiles (profile.proto's wire format, written
from the public schema), for scripts: the agent's tests and
contrib/flamegraph.py.  parse(path) returns plain dicts; gzip is optional."""
import gzip


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
    p = {'samples': [], 'mappings': {}, 'locations': {}, 'functions': {}, 'strings': [],
         'comments': []}
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
            l, lines = {}, []
            for g, _, gv in fields(v):
                if g == 4:
                    lines.append(dict((h, hv) for h, _, hv in fields(gv)))
                else:
                    l[g] = gv
            l['lines'] = lines  # innermost first: {1: function id, 2: line}
            p['locations'][l.get(1, 0)] = l
        elif f == 5:
            fn = dict((g, gv) for g, _, gv in fields(v)); p['functions'][fn.get(1, 0)] = fn
        elif f == 6:
            p['strings'].append(v.decode('utf-8', 'replace'))
        elif f == 13:
            p['comments'] += ints(wt, v)
    st = p['strings']
    for m in p['mappings'].values():
        m['build_id'] = st[m.get(6, 0)]; m['filename'] = st[m.get(5, 0)]
    for s in p['samples']:
        s['labels'] = {st[l.get(1, 0)]: st[l.get(2, 0)] for l in s['labels']}
    for fn in p['functions'].values():
        fn['name'] = st[fn.get(2, 0)]; fn['filename'] = st[fn.get(4, 0)]
    p['comments'] = [st[c] for c in p['comments']]
    return p
