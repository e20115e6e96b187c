#!/usr/bin/env python3
"""A misbehaving upstream for the federation tests.

usage: fake_upstream.py MODE PORTFILE COUNTFILE [FILE]
  hang   accept and never answer
  500    answer 500
  html   answer 200 with an HTML page
  slow   answer FILE after 1 s (to make concurrent requests overlap)
Every request appends one line to COUNTFILE."""
import http.server, socketserver, sys, time

mode, portfile, countfile = sys.argv[1:4]
body_file = sys.argv[4] if len(sys.argv) > 4 else None

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass
    def do_GET(self):
        with open(countfile, "a") as f:
            f.write(self.path + "\n")
        if mode == "hang":
            time.sleep(120)
            return
        if mode == "500":
            self.send_response(500); self.send_header("Content-Length", "5"); self.end_headers()
            self.wfile.write(b"oops\n"); return
        if mode == "html":
            page = b"<html><body>Service unavailable</body></html>"
            self.send_response(200); self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page))); self.end_headers()
            self.wfile.write(page); return
        time.sleep(1)
        data = open(body_file, "rb").read()
        self.send_response(200); self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data))); self.end_headers()
        self.wfile.write(data)

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

srv = Server(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os; os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
