#!/usr/bin/env python3
"""Enqueue meetops operations over the HTTP API, with Python's standard
library only (urllib).

    export MEETOPS_API=http://127.0.0.1:8090   # worker -dev: http://127.0.0.1:8080
    export MEETOPS_TOKEN=mo_...                # a token with scope enqueue (admin for dead letters)

    python3 enqueue.py one                     # enqueue one operation (dismiss demo-app/room-001)
    python3 enqueue.py batch ../ops.jsonl      # a batch from a JSONL file (sent as NDJSON)
    python3 enqueue.py status KEY [--wait 30]  # a task's status; --wait polls until it has finished
    python3 enqueue.py batch-status BATCH_ID   # a batch's progress
    python3 enqueue.py dead [--op dismiss]     # every dead letter, page after page (admin)

Each command prints the API's JSON answer. Errors are RFC 9457 problems: the
script prints their type and detail and exits 1. A 429 (rate limit) or 503
(Redis unavailable) is retried after its Retry-After, up to 5 times: sending
the same request again is always safe, since every operation has an
idempotency key (a duplicate is reported, never enqueued twice).
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

RETRIES = 5
FINISHED = {"completed", "archived"}


class Problem(Exception):
    """An RFC 9457 problem answer."""

    def __init__(self, status, body):
        self.status = status
        try:
            self.problem = json.loads(body)
        except ValueError:
            self.problem = {"type": "?", "detail": body.decode("utf-8", "replace")}
        super().__init__(f"{status} {self.problem.get('type')}: {self.problem.get('detail')}")


class Client:
    """A minimal client of the meetops HTTP API."""

    def __init__(self, base, token):
        self.base = base.rstrip("/")
        self.token = token

    def call(self, method, path, body=None, content_type="application/json", headers=None):
        """Send one request; return (status, decoded JSON or None). Retries
        429 and 503 after their Retry-After; raises Problem for other 4xx
        and 5xx answers."""
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
        for attempt in range(RETRIES + 1):
            req = urllib.request.Request(self.base + path, data=data, method=method)
            req.add_header("Authorization", "Bearer " + self.token)
            req.add_header("Accept", "application/json")
            if data is not None:
                req.add_header("Content-Type", content_type)
            for k, v in (headers or {}).items():
                req.add_header(k, v)
            try:
                with urllib.request.urlopen(req, timeout=60) as resp:
                    raw = resp.read()
                    return resp.status, (json.loads(raw) if raw else None)
            except urllib.error.HTTPError as e:
                raw = e.read()
                if e.code in (429, 503) and attempt < RETRIES:
                    wait = int(e.headers.get("Retry-After", "1"))
                    print(f"{e.code}: retrying in {wait} s", file=sys.stderr)
                    time.sleep(wait)
                    continue
                raise Problem(e.code, raw) from None
        raise AssertionError("unreachable")

    def enqueue(self, operation, idempotency_key=None):
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self.call("POST", "/v1/operations", operation, headers=headers)

    def batch_from_file(self, path, label=None, skip_invalid=False):
        with open(path, "rb") as f:
            lines = f.read()
        query = {}
        if label:
            query["label"] = label
        if skip_invalid:
            query["skip_invalid"] = "true"
        qs = "?" + urllib.parse.urlencode(query) if query else ""
        return self.call("POST", "/v1/batches" + qs, lines, content_type="application/x-ndjson")

    def status(self, key):
        return self.call("GET", "/v1/operations/" + urllib.parse.quote(key, safe=""))

    def batch(self, batch_id):
        return self.call("GET", "/v1/batches/" + urllib.parse.quote(batch_id, safe=""))

    def dead_letters(self, op=None, limit=100):
        """Yield every dead letter, following next_cursor."""
        cursor = None
        while True:
            query = {"limit": str(limit)}
            if op:
                query["op"] = op
            if cursor:
                query["cursor"] = cursor
            _, page = self.call("GET", "/v1/dead-letters?" + urllib.parse.urlencode(query))
            yield from page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return


def main(argv):
    p = argparse.ArgumentParser(description="Enqueue meetops operations over the HTTP API.")
    p.add_argument("--api", default=os.environ.get("MEETOPS_API", "http://127.0.0.1:8090"))
    p.add_argument("--token", default=os.environ.get("MEETOPS_TOKEN", ""))
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("one", help="enqueue one operation")
    b = sub.add_parser("batch", help="enqueue a JSONL file as one batch")
    b.add_argument("file")
    b.add_argument("--label", default=None)
    b.add_argument("--skip-invalid", action="store_true")
    s = sub.add_parser("status", help="a task's status")
    s.add_argument("key")
    s.add_argument("--wait", type=float, default=0, help="poll up to this many seconds for it to finish")
    bs = sub.add_parser("batch-status", help="a batch's progress")
    bs.add_argument("batch_id")
    d = sub.add_parser("dead", help="list dead letters")
    d.add_argument("--op", default=None)
    d.add_argument("--limit", type=int, default=100)
    args = p.parse_args(argv)
    if not args.token:
        p.error("no token: set MEETOPS_TOKEN or pass --token")
    client = Client(args.api, args.token)
    try:
        if args.command == "one":
            status, task = client.enqueue({"op": "dismiss", "app_id": "demo-app", "room_id": "room-001"})
            task["http_status"] = status  # 201 new, 200 duplicate
            print(json.dumps(task))
        elif args.command == "batch":
            _, summary = client.batch_from_file(args.file, label=args.label, skip_invalid=args.skip_invalid)
            print(json.dumps(summary))
        elif args.command == "status":
            deadline = time.monotonic() + args.wait
            while True:
                _, st = client.status(args.key)
                if st["state"] in FINISHED or time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
            print(json.dumps(st))
        elif args.command == "batch-status":
            _, progress = client.batch(args.batch_id)
            print(json.dumps(progress))
        elif args.command == "dead":
            for item in client.dead_letters(op=args.op, limit=args.limit):
                print(json.dumps(item))
    except Problem as e:
        print(f"error: {e}", file=sys.stderr)
        for err in e.problem.get("errors", []):
            where = f"operation {err['index']}: " if "index" in err else ""
            print(f"  {where}{err.get('field') or '(the object)'}: {err['message']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
