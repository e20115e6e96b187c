#!/usr/bin/env python3
"""A hostile unwind-table server for tests/attack/test_agent.sh.

GET /buildid/<id>/unwind answers, for the build-ID in DIR/target, what the
word in DIR/mode says (read per request, so one server serves every run):
  ok       DIR/tables/<id>, as any build-ID (below)
  other    DIR/other.unwind: a well-formed table of another object
  arch     DIR/arch.unwind: the right build-ID, another architecture
  huge     200 MB of zeros with a Content-Length
  chunked  200 MB of zeros, chunked (no Content-Length)
  garbage  DIR/garbage
Any other build-ID: DIR/tables/<id> with an ETag (304 when If-None-Match
names it), else 404.  Each request appends "<id> <status> <sent bytes>
<If-None-Match or ->" to DIR/requests.  Listens on 127.0.0.1 (a port the
kernel picks, written to DIR/port) and exits after --lifetime seconds."""
import argparse, hashlib, os, re, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument('--dir', required=True)
ap.add_argument('--lifetime', type=float, default=300)
a = ap.parse_args()
lock = threading.Lock()
HUGE = 200 << 20


def read(name):
    try:
        with open(os.path.join(a.dir, name), 'rb') as f:
            return f.read()
    except OSError:
        return None


def etag_of(data):
    return '"%s"' % hashlib.sha256(data).hexdigest()[:16]


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, *args):
        pass

    def note(self, build_id, status, sent):
        with lock, open(os.path.join(a.dir, 'requests'), 'a') as f:
            f.write('%s %d %d %s\n' % (build_id, status, sent,
                                       self.headers.get('If-None-Match', '-')))

    def send(self, build_id, status, body, etag=None):
        self.send_response(status)
        if etag:
            self.send_header('ETag', etag)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.note(build_id, status, len(body))

    def zeros(self, build_id, chunked):
        self.send_response(200)
        if chunked:
            self.send_header('Transfer-Encoding', 'chunked')
        else:
            self.send_header('Content-Length', str(HUGE))
        self.end_headers()
        block, sent = bytes(1 << 16), 0
        try:
            while sent < HUGE:
                if chunked:
                    self.wfile.write(b'%x\r\n' % len(block) + block + b'\r\n')
                else:
                    self.wfile.write(block)
                sent += len(block)
            if chunked:
                self.wfile.write(b'0\r\n\r\n')
        except OSError:
            self.close_connection = True
        self.note(build_id, 200, sent)

    def do_GET(self):
        m = re.fullmatch(r'/buildid/([0-9a-f]+)/unwind', self.path)
        if not m:
            return self.send('-', 404, b'')
        build_id = m.group(1)
        mode = (read('mode') or b'ok').decode().strip()
        if build_id == (read('target') or b'').decode().strip() and mode != 'ok':
            if mode in ('huge', 'chunked'):
                return self.zeros(build_id, mode == 'chunked')
            body = read({'other': 'other.unwind', 'arch': 'arch.unwind'}.get(mode, 'garbage'))
            return self.send(build_id, 200, body)
        body = read(os.path.join('tables', build_id))
        if body is None:
            return self.send(build_id, 404, b'not found\n')
        tag = etag_of(body)
        if self.headers.get('If-None-Match') == tag:
            self.send_response(304)
            self.send_header('ETag', tag)
            self.end_headers()
            return self.note(build_id, 304, 0)
        self.send(build_id, 200, body, tag)


srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
srv.daemon_threads = True
threading.Timer(a.lifetime, srv.shutdown).start()
with open(os.path.join(a.dir, 'port.tmp'), 'w') as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(a.dir, 'port.tmp'), os.path.join(a.dir, 'port'))
srv.serve_forever()
