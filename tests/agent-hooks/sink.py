#!/usr/bin/env python3
"""A tiny POST /profiles receiver for the agent's tests: stores each body as
DIR/<n>.pb.gz and answers 201.  Listens on 127.0.0.1 (port 0 or --port),
writes its port to --port-file, and exits by itself after --lifetime s."""
import argparse, os, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ap = argparse.ArgumentParser()
ap.add_argument('--dir', required=True)
ap.add_argument('--port', type=int, default=0)
ap.add_argument('--port-file', required=True)
ap.add_argument('--lifetime', type=float, default=300)
a = ap.parse_args()
os.makedirs(a.dir, exist_ok=True)
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != '/profiles':
            self.send_error(404); return
        n = int(self.headers.get('Content-Length', '0'))
        body = self.rfile.read(n)
        with lock:
            seq = len(os.listdir(a.dir)) + 1
            tmp = os.path.join(a.dir, '.%06d.tmp' % seq)
            open(tmp, 'wb').write(body)
            os.rename(tmp, os.path.join(a.dir, '%06d.pb.gz' % seq))
        self.send_response(201); self.send_header('Content-Length', '0'); self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer.allow_reuse_address = True
srv = ThreadingHTTPServer(('127.0.0.1', a.port), Handler)
with open(a.port_file + '.tmp', 'w') as f:
    f.write(str(srv.server_address[1]))
os.rename(a.port_file + '.tmp', a.port_file)
threading.Timer(a.lifetime, srv.shutdown).start()
srv.serve_forever()
