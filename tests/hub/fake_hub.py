"""A loopback HTTP server speaking the part of the Hub's API that huggingface_hub's upload path uses, and the
read side `datasets.load_dataset(repo_id)` needs (repo info, tree, paths-info, file downloads with ranges).

It keeps repos in memory (branches -> commits -> files), records every request (method, path, Authorization,
body), stores LFS objects after checking their sha256, and can inject faults: an HTTP status for the next N
matching requests, a connection cut mid-body, or a commit applied whose answer is then dropped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.png filter=lfs diff=lfs merge=lfs -text\n"
LFS_SUFFIXES = (".parquet", ".png", ".zip", ".bin")


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class StoredFile:
    content: bytes
    lfs: bool


@dataclass
class Commit:
    oid: str
    parent: str | None
    summary: str
    files: dict[str, StoredFile]


@dataclass
class Repo:
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    method: str
    path: str  # regex searched in the request path
    status: int | None = None  # answer this status instead of handling the request
    cut: bool = False  # read half the body, then close the connection without answering
    drop_answer: bool = False  # handle the request, then close the connection without answering
    times: int = 1
    retry_after: str | None = None
    hits: int = 0


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None
    body: bytes


class FakeHub:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self._counter = 0
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- helpers for tests
    def inject(self, method: str, path: str, **kwargs) -> Fault:
        fault = Fault(method, path, **kwargs)
        with self.lock:
            self.faults.append(fault)
        return fault

    def files(self, repo_id: str, branch: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return {p: f.content for p, f in repo.commits[repo.branches[branch]].files.items()}

    def history(self, repo_id: str, branch: str = "main") -> list[Commit]:
        repo = self.repos[repo_id]
        commits, oid = [], repo.branches[branch]
        while oid is not None:
            commits.append(repo.commits[oid])
            oid = repo.commits[oid].parent
        return commits

    def add_repo(self, repo_id: str, files: dict[str, bytes]) -> None:
        """A public repo holding ``files`` (e.g. a model repo with a tokenizer.json), in one commit."""
        with self.lock:
            repo = self._create_repo(repo_id, private=False)
            head = repo.commits[repo.branches["main"]]
            stored = {path: StoredFile(content, path.endswith(LFS_SUFFIXES)) for path, content in files.items()}
            repo.branches["main"] = self._new_commit(repo, head.oid, "add files", {**head.files, **stored}).oid

    def calls(self, method: str, pattern: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    # -- state changes (called with the lock held)
    def _new_commit(self, repo: Repo, parent: str | None, summary: str, files: dict[str, StoredFile]) -> Commit:
        self._counter += 1
        oid = hashlib.sha1(f"{repo.repo_id}:{self._counter}:{summary}".encode()).hexdigest()
        commit = Commit(oid, parent, summary, files)
        repo.commits[oid] = commit
        return commit

    def _create_repo(self, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_id, private)
        first = self._new_commit(repo, None, "initial commit", {".gitattributes": StoredFile(GITATTRIBUTES, False)})
        repo.branches["main"] = first.oid
        self.repos[repo_id] = repo
        return repo


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    # -- plumbing
    def _read_body(self, limit: int | None = None) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
                if limit is not None and len(body) >= limit:
                    return body
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length if limit is None else min(limit, length))

    def _send(self, status: int, payload=None, *, raw: bytes | None = None, headers: dict | None = None) -> None:
        body = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, {"error": message}, headers=headers)

    def _cut(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.hub.lock:
            for fault in self.hub.faults:
                if fault.method == method and re.search(fault.path, path) and fault.hits < fault.times:
                    fault.hits += 1
                    return fault
        return None

    def _dispatch(self, method: str) -> None:
        path = unquote(urlsplit(self.path).path)
        query = parse_qs(urlsplit(self.path).query)
        fault = self._fault(method, path)
        if fault is not None and fault.cut:
            length = int(self.headers.get("Content-Length") or 0)
            self._read_body(limit=max(1, length // 2))
            self._cut()
            return
        body = self._read_body()
        with self.hub.lock:
            self.hub.requests.append(Request(method, path, self.headers.get("Authorization"), body))
        if fault is not None and fault.status is not None:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._send(fault.status, {"error": f"injected HTTP {fault.status}"}, headers=headers)
            return
        status, payload, raw, headers = self._route(method, path, query, body)
        if fault is not None and fault.drop_answer:
            self._cut()
            return
        if status >= 400 and raw is None:
            self._error(status, payload.get("error", "error"), payload.get("code"))
        elif isinstance(payload, bytes):
            self._send_file(status, payload, headers or {})
        else:
            self._send(status, payload, raw=raw, headers=headers)

    do_GET = lambda self: self._dispatch("GET")  # noqa: E731
    do_POST = lambda self: self._dispatch("POST")  # noqa: E731
    do_PUT = lambda self: self._dispatch("PUT")  # noqa: E731
    do_DELETE = lambda self: self._dispatch("DELETE")  # noqa: E731
    do_HEAD = lambda self: self._dispatch("HEAD")  # noqa: E731

    def _send_file(self, status: int, payload, headers: dict) -> None:
        """A file download as the Hub answers it: commit and etag headers, byte ranges, no body for HEAD."""
        content = payload
        code, body = 200, content
        match = re.match(r"bytes=(\d*)-(\d*)$", self.headers.get("Range") or "")
        if match and content:
            start = int(match.group(1)) if match.group(1) else max(0, len(content) - int(match.group(2)))
            end = int(match.group(2)) if match.group(1) and match.group(2) else len(content) - 1
            body = content[start:min(end, len(content) - 1) + 1]
            code = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{start + len(body) - 1}/{len(content)}"}
        self.send_response(code)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    # -- the API
    def _route(self, method, path, query, body):
        hub = self.hub
        base = hub.url
        with hub.lock:
            if path == "/api/agent-harnesses":
                return 404, {"error": "not here"}, None, None
            if method == "POST" and path == "/api/repos/create":
                data = json.loads(body)
                repo_id = f"{data['organization']}/{data['name']}"
                if repo_id in hub.repos:
                    return 409, {"error": "You already created this dataset repo",
                                 "url": f"{base}/datasets/{repo_id}"}, None, None
                hub._create_repo(repo_id, data.get("visibility") == "private" or bool(data.get("private")))
                return 200, {"url": f"{base}/datasets/{repo_id}", "name": repo_id}, None, None
            if method == "DELETE" and path == "/api/repos/delete":
                data = json.loads(body)
                if hub.repos.pop(f"{data['organization']}/{data['name']}", None) is None:
                    return 404, {"error": "Repository not found", "code": "RepoNotFound"}, None, None
                return 200, {}, None, None
            if method == "POST" and path == "/api/validate-yaml":
                content = json.loads(body)["content"]
                match = re.match(r"^---\n(.*?)\n---\n", content, re.S)
                try:
                    yaml.safe_load(match.group(1) if match else "")
                except yaml.YAMLError as err:
                    return 400, {"error": "invalid yaml", "errors": [{"message": str(err)}]}, None, None
                return 200, {"errors": [], "warnings": []}, None, None
            match = re.match(r"^/datasets/([^/]+/[^/]+)\.git/info/lfs/objects/batch$", path)
            if method == "POST" and match:
                return self._lfs_batch(json.loads(body), base)
            match = re.match(r"^/lfs-upload/([0-9a-f]{64})$", path)
            if method == "PUT" and match:
                oid = match.group(1)
                if hashlib.sha256(body).hexdigest() != oid:
                    return 400, {"error": "sha256 mismatch"}, None, None
                hub.lfs_objects[oid] = body
                return 200, {}, None, None
            if method == "POST" and path == "/lfs-verify":
                data = json.loads(body)
                ok = data["oid"] in hub.lfs_objects and len(hub.lfs_objects[data["oid"]]) == data["size"]
                return (200, {}, None, None) if ok else (404, {"error": "object not found"}, None, None)
            # Dataset files under /datasets/, model files (e.g. a tokenizer.json) at the root, as on the Hub.
            match = re.match(r"^/(?:datasets/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
            if method in ("GET", "HEAD") and match:
                return self._resolve(*match.groups())
            match = re.match(r"^/api/datasets/([^/]+/[^/]+)(?:/(.*))?$", path)
            if match:
                return self._repo_api(method, match.group(1), match.group(2) or "", query, body, base)
        return 404, {"error": f"no route for {method} {path}"}, None, None

    def _resolve(self, repo_id, revision, file_path):
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            return 404, {"error": "Repository not found", "code": "RepoNotFound"}, None, None
        oid = repo.branches.get(revision) or (revision if revision in repo.commits else None)
        if oid is None:
            return 404, {"error": "Revision not found", "code": "RevisionNotFound"}, None, None
        stored = repo.commits[oid].files.get(file_path)
        if stored is None:
            return 404, {"error": "Entry not found", "code": "EntryNotFound"}, None, None
        headers = {"X-Repo-Commit": oid}
        if stored.lfs:
            sha = hashlib.sha256(stored.content).hexdigest()
            headers.update({"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(stored.content))})
        else:
            headers["ETag"] = f'"{git_blob_sha1(stored.content)}"'
        return 200, stored.content, None, headers

    def _lfs_batch(self, data, base):
        objects = []
        for obj in data["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.hub.lfs_objects:
                entry["actions"] = {"upload": {"href": f"{base}/lfs-upload/{obj['oid']}"},
                                    "verify": {"href": f"{base}/lfs-verify"}}
            objects.append(entry)
        return 200, {"transfer": "basic", "objects": objects}, None, None

    def _repo_api(self, method, repo_id, rest, query, body, base):
        hub = self.hub
        repo = hub.repos.get(repo_id)
        if repo is None:
            return 404, {"error": "Repository not found", "code": "RepoNotFound"}, None, None

        def head(rev):
            return repo.branches.get(rev) or (rev if rev in repo.commits else None)

        if method == "GET" and (rest == "" or rest.startswith("revision/")):
            rev = rest[len("revision/"):] if rest else "main"
            oid = head(rev)
            if oid is None:
                return 404, {"error": "Revision not found", "code": "RevisionNotFound"}, None, None
            siblings = [{"rfilename": p} for p in sorted(repo.commits[oid].files)]
            return 200, {"id": repo_id, "sha": oid, "private": repo.private, "siblings": siblings}, None, None
        if method == "GET" and rest == "refs":
            branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": o} for n, o in repo.branches.items()]
            return 200, {"branches": branches, "converts": [], "tags": [], "pullRequests": []}, None, None
        match = re.match(r"^branch/(.+)$", rest)
        if match:
            name = match.group(1)
            if method == "POST":
                if name in repo.branches:
                    return 409, {"error": "branch exists"}, None, None
                start = (json.loads(body or b"{}") or {}).get("startingPoint") or "main"
                repo.branches[name] = head(start)
                return 200, {}, None, None
            if method == "DELETE":
                if repo.branches.pop(name, None) is None:
                    return 404, {"error": "no such branch", "code": "RevisionNotFound"}, None, None
                return 200, {}, None, None
        match = re.match(r"^tree/([^/]+)(?:/(.*))?$", rest)
        if method == "GET" and match:
            oid = head(match.group(1))
            if oid is None:
                return 404, {"error": "Revision not found", "code": "RevisionNotFound"}, None, None
            return 200, self._tree(repo.commits[oid].files, match.group(2) or "",
                                   query.get("recursive", ["false"])[0].lower() == "true"), None, None
        match = re.match(r"^paths-info/(.+)$", rest)
        if method == "POST" and match:
            oid = head(match.group(1))
            if oid is None:
                return 404, {"error": "Revision not found", "code": "RevisionNotFound"}, None, None
            form = parse_qs(body.decode())
            wanted = {p.strip("/") for p in form.get("paths", [])}
            entries = self._tree(repo.commits[oid].files, "", True)
            return 200, [e for e in entries if e["path"] in wanted], None, None
        match = re.match(r"^preupload/(.+)$", rest)
        if method == "POST" and match:
            oid = head(match.group(1))
            files = repo.commits[oid].files if oid else {}
            answer = []
            for item in json.loads(body)["files"]:
                sample = base64.b64decode(item["sample"])
                lfs = item["path"].endswith(LFS_SUFFIXES) or b"\0" in sample or item["size"] > 10 * 2**20
                existing = files.get(item["path"])
                remote_oid = None
                if existing is not None:
                    remote_oid = (hashlib.sha256(existing.content).hexdigest() if existing.lfs
                                  else git_blob_sha1(existing.content))
                answer.append({"path": item["path"], "uploadMode": "lfs" if lfs else "regular",
                               "shouldIgnore": False, "oid": remote_oid})
            return 200, {"files": answer, "commitOid": oid}, None, None
        match = re.match(r"^commit/(.+)$", rest)
        if method == "POST" and match:
            return self._commit(repo, match.group(1), body, base)
        return 404, {"error": f"no route for {method} {rest}"}, None, None

    @staticmethod
    def _tree(files: dict[str, StoredFile], prefix: str, recursive: bool) -> list[dict]:
        prefix = prefix.strip("/")
        entries, folders = [], set()
        for path in sorted(files):
            if prefix and not path.startswith(prefix + "/"):
                continue
            relative = path[len(prefix) + 1:] if prefix else path
            parts = relative.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(([prefix] if prefix else []) + parts[:depth])
                if (recursive or depth == 1) and folder not in folders:
                    folders.add(folder)
                    entries.append({"type": "directory", "oid": hashlib.sha1(folder.encode()).hexdigest(),
                                    "size": 0, "path": folder})
            if not recursive and len(parts) > 1:
                continue
            stored = files[path]
            entry = {"type": "file", "size": len(stored.content), "path": path}
            if stored.lfs:
                sha = hashlib.sha256(stored.content).hexdigest()
                pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {len(stored.content)}\n"
                entry["oid"] = git_blob_sha1(pointer.encode())
                entry["lfs"] = {"oid": sha, "size": len(stored.content), "pointerSize": len(pointer)}
            else:
                entry["oid"] = git_blob_sha1(stored.content)
            entries.append(entry)
        return entries

    def _commit(self, repo: Repo, branch: str, body: bytes, base: str):
        if branch not in repo.branches:
            return 404, {"error": "Revision not found", "code": "RevisionNotFound"}, None, None
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0]["key"] != "header":
            return 400, {"error": "first line must be the header"}, None, None
        header = lines[0]["value"]
        current = repo.branches[branch]
        if header.get("parentCommit") not in (None, current):
            return 412, {"error": "A commit has happened since. Please refresh and try again."}, None, None
        files = dict(repo.commits[current].files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = StoredFile(base64.b64decode(value["content"]), False)
            elif key == "lfsFile":
                content = self.hub.lfs_objects.get(value["oid"])
                if content is None or len(content) != value["size"]:
                    return 422, {"error": f"LFS object {value['oid']} was not uploaded"}, None, None
                files[value["path"]] = StoredFile(content, True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    return 404, {"error": "A file with this name doesn't exist", "code": "EntryNotFound"}, None, None
            else:
                return 400, {"error": f"unsupported operation {key}"}, None, None
        commit = self.hub._new_commit(repo, current, header["summary"], files)
        repo.branches[branch] = commit.oid
        url = f"{base}/datasets/{repo.repo_id}/commit/{commit.oid}"
        return 200, {"success": True, "commitOid": commit.oid, "commitUrl": url}, None, None
