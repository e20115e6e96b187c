#!/usr/bin/env python3
"""A small S3 in memory, path-style, that can misbehave on request.

It serves what the S3 client uses (bucket HEAD/PUT, object PUT/GET/HEAD/
DELETE, multipart uploads, ListObjectsV2) and checks what a real store
checks of a PUT: the x-amz-content-sha256 and Content-MD5 of the body.
Signatures are not verified (Ceph RGW does that in tests/cluster/).

Faults are queued through the control path:
  POST /__fault?method=GET&kind=KIND&count=N[&prefix=KEY_PREFIX][&delay=S]
     KIND: 500 | 503 | slowdown | truncate | bad_etag | slow
     count: how many matching requests get it (-1: all)
  GET  /__log     one line per request: METHOD PATH?QUERY STATUS
  POST /__reset   forget the faults and the log

usage: fake_s3.py PORT_FILE
"""
import base64
import hashlib
import http.server
import socket
import sys
import threading
import time
import urllib.parse
from xml.sax.saxutils import escape

lock = threading.Lock()
buckets = {}        # name -> {key: (body, etag, meta)}
uploads = {}        # upload id -> {"bucket", "key", "parts": {n: (body, md5hex)}, "meta"}
faults = []         # dicts: method, kind, count, prefix, delay
log = []
next_upload = [0]


def take_fault(method, key):
    with lock:
        for f in faults:
            if f["method"] != method or not key.startswith(f["prefix"]):
                continue
            if f["count"] == 0:
                continue
            if f["count"] > 0:
                f["count"] -= 1
            return f
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def split(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
        path = urllib.parse.unquote(u.path)
        parts = path.lstrip("/").split("/", 1)
        bucket = parts[0]
        key = parts[1] if len(parts) > 1 else ""
        return bucket, key, q

    def answer(self, status, body=b"", headers=None, head_only=False):
        with lock:
            log.append("%s %s %d" % (self.command, self.path, status))
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def error(self, status, code):
        body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>%s</Code>"
                "<Message>injected or real</Message></Error>" % code).encode()
        self.answer(status, body, {"Content-Type": "application/xml"},
                    head_only=self.command == "HEAD")

    def read_body(self):
        n = int(self.headers.get("Content-Length", "0"))
        data = b""
        while len(data) < n:
            chunk = self.rfile.read(n - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def injected(self, key):
        """Answer an injected failure; True when the request is done."""
        f = take_fault(self.command, key)
        if not f:
            return None
        if f["kind"] == "slow":
            time.sleep(f["delay"])
            return None  # then answer normally (if the client still waits)
        if self.command in ("PUT", "POST"):
            self.read_body()
        if f["kind"] == "500":
            self.error(500, "InternalError")
            return True
        if f["kind"] == "503":
            self.error(503, "ServiceUnavailable")
            return True
        if f["kind"] == "slowdown":
            self.error(503, "SlowDown")
            return True
        return f  # truncate / bad_etag: the GET handler applies them

    def do_POST(self):
        if self.path.startswith("/__"):
            return self.control()
        bucket, key, q = self.split()
        if self.injected(key) is True:
            return
        body = self.read_body()
        if "uploads" in q:
            with lock:
                next_upload[0] += 1
                uid = "up%d/+=" % next_upload[0]
                meta = {k: v for k, v in self.headers.items() if k.lower().startswith("x-amz-meta-")}
                uploads[uid] = {"bucket": bucket, "key": key, "parts": {}, "meta": meta}
            xml = ("<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key>"
                   "<UploadId>%s</UploadId></InitiateMultipartUploadResult>"
                   % (escape(bucket), escape(key), escape(uid)))
            return self.answer(200, xml.encode(), {"Content-Type": "application/xml"})
        if "uploadId" in q:
            if not self.check_payload(body):
                return
            with lock:
                up = uploads.pop(q["uploadId"], None)
            if not up:
                return self.error(404, "NoSuchUpload")
            nums = sorted(up["parts"])
            data = b"".join(up["parts"][n][0] for n in nums)
            digests = b"".join(bytes.fromhex(up["parts"][n][1]) for n in nums)
            etag = "%s-%d" % (hashlib.md5(digests).hexdigest(), len(nums))
            with lock:
                buckets.setdefault(bucket, {})[key] = (data, etag, up["meta"])
            xml = "<CompleteMultipartUploadResult><ETag>&quot;%s&quot;</ETag></CompleteMultipartUploadResult>" % etag
            return self.answer(200, xml.encode(), {"Content-Type": "application/xml"})
        self.error(400, "InvalidRequest")

    def check_payload(self, body):
        sha = self.headers.get("x-amz-content-sha256")
        if sha is None or not self.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"):
            self.error(403, "AccessDenied")
            return False
        if sha != "UNSIGNED-PAYLOAD" and sha != hashlib.sha256(body).hexdigest():
            self.error(400, "XAmzContentSHA256Mismatch")
            return False
        md5 = self.headers.get("Content-MD5")
        if md5 is not None and base64.b64decode(md5) != hashlib.md5(body).digest():
            self.error(400, "BadDigest")
            return False
        return True

    def do_PUT(self):
        bucket, key, q = self.split()
        if self.injected(key) is True:
            return
        body = self.read_body()
        if not self.check_payload(body):
            return
        if not key:
            with lock:
                exists = bucket in buckets
                buckets.setdefault(bucket, {})
            return self.error(409, "BucketAlreadyOwnedByYou") if exists else self.answer(200)
        with lock:
            if bucket not in buckets:
                return self.error(404, "NoSuchBucket")
        md5 = hashlib.md5(body).hexdigest()
        if "uploadId" in q:
            with lock:
                up = uploads.get(q["uploadId"])
                if up:
                    up["parts"][int(q["partNumber"])] = (body, md5)
            if not up:
                return self.error(404, "NoSuchUpload")
            return self.answer(200, b"", {"ETag": '"%s"' % md5})
        meta = {k: v for k, v in self.headers.items() if k.lower().startswith("x-amz-meta-")}
        with lock:
            buckets[bucket][key] = (body, md5, meta)
        self.answer(200, b"", {"ETag": '"%s"' % md5})

    def do_HEAD(self):
        self.get(head=True)

    def do_GET(self):
        if self.path.startswith("/__log"):
            with lock:
                text = "".join(line + "\n" for line in log)
            return self.answer(200, text.encode())
        self.get(head=False)

    def get(self, head):
        bucket, key, q = self.split()
        f = self.injected(key)
        if f is True:
            return
        with lock:
            objs = buckets.get(bucket)
            obj = objs.get(key) if objs is not None and key else None
        if objs is None:
            return self.error(404, "NoSuchBucket")
        if not key:
            if head:
                return self.answer(200, head_only=True)
            return self.list(objs, q)
        if obj is None:
            return self.error(404, "NoSuchKey")
        body, etag, meta = obj
        headers = {"ETag": '"%s"' % etag, "Last-Modified": "Mon, 30 Nov 2026 12:00:00 GMT"}
        headers.update(meta)
        if isinstance(f, dict) and f["kind"] == "bad_etag":
            headers["ETag"] = '"%s"' % hashlib.md5(body + b"x").hexdigest()
        if isinstance(f, dict) and f["kind"] == "truncate" and not head:
            with lock:
                log.append("%s %s truncated" % (self.command, self.path))
            self.send_response(200)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.answer(200, body, headers, head_only=head)

    def list(self, objs, q):
        prefix = q.get("prefix", "")
        max_keys = int(q.get("max-keys", "1000"))
        start = q.get("continuation-token", "")
        keys = sorted(k for k in objs if k.startswith(prefix) and k > start)
        page, rest = keys[:max_keys], keys[max_keys:]
        out = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult>"]
        out.append("<IsTruncated>%s</IsTruncated>" % ("true" if rest else "false"))
        if rest:
            out.append("<NextContinuationToken>%s</NextContinuationToken>" % escape(page[-1]))
        for k in page:
            body, etag, _ = objs[k]
            out.append("<Contents><Key>%s</Key><ETag>&quot;%s&quot;</ETag><Size>%d</Size></Contents>"
                       % (escape(k), etag, len(body)))
        out.append("</ListBucketResult>")
        self.answer(200, "".join(out).encode(), {"Content-Type": "application/xml"})

    def do_DELETE(self):
        bucket, key, q = self.split()
        if self.injected(key) is True:
            return
        with lock:
            if "uploadId" in q:
                uploads.pop(q["uploadId"], None)
            else:
                buckets.get(bucket, {}).pop(key, None)
        self.answer(204)

    def control(self):
        self.read_body()
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        with lock:
            if u.path == "/__reset":
                faults.clear()
                log.clear()
            elif u.path == "/__fault":
                faults.append({"method": q["method"], "kind": q["kind"],
                               "count": int(q.get("count", "1")),
                               "prefix": q.get("prefix", ""),
                               "delay": float(q.get("delay", "0"))})
            elif u.path == "/__uploads":
                pass
        self.answer(200, ("%d\n" % len(uploads)).encode())


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.rename(sys.argv[1] + ".tmp", sys.argv[1])
    server.serve_forever()


if __name__ == "__main__":
    main()
