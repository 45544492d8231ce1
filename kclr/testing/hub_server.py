"""A local HTTP server that serves folders the way the Hugging Face Hub does.

For tests without internet: point `huggingface_hub` at it with `HF_ENDPOINT` and
`snapshot_download` / `hf_hub_download` work as against the real Hub. It implements
the endpoints those functions call (huggingface_hub 0.2x-2.x):

- `GET /api/models/{repo}` and `GET /api/models/{repo}/revision/{revision}`: model
  info with `sha` (the commit) and `siblings`;
- `GET /api/models/{repo}/tree/{revision}[/{path}]`: the file listing;
- `HEAD` / `GET /{repo}/resolve/{revision}/{path}`: file metadata (`X-Repo-Commit`,
  `ETag`, `Content-Length`) and content;
- uploads as `HfApi.create_repo` / `upload_folder` make them: `POST /api/repos/create`,
  `POST /api/validate-yaml`, `POST /api/models/{repo}/preupload/{revision}` (every file
  "regular", i.e. inline) and `POST /api/models/{repo}/commit/{revision}` (NDJSON with
  base64 file contents); each commit is a new snapshot and moves the branch.

Unknown repos, revisions and files answer 404 with the Hub's `X-Error-Code` header.
`StaticServer` serves a plain folder by path (e.g. a mirror of a storage bucket).

Example:

```python
from kclr.testing.hub_server import HubServer

with HubServer() as hub:
    hub.add_repo("me/model", "path/to/folder")
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    kclr.zoo.load("hf://me/model")
```
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import pathlib
import shutil
import tempfile
import threading
import urllib.parse
from typing import Any


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's id


class _Repo:
    """A repo: snapshots by commit, branches pointing at commits."""

    def __init__(self, repo_id: str, folder: pathlib.Path | None, revision: str) -> None:
        self.repo_id = repo_id
        self.snapshots: dict[str, pathlib.Path] = {}
        self.refs: dict[str, str] = {}
        self.default = revision
        if folder is not None:
            self.add_commit(folder, revision)

    def add_commit(self, folder: pathlib.Path, revision: str) -> str:
        digest = hashlib.sha1(self.repo_id.encode())  # noqa: S324 - a fake commit id
        digest.update(str(len(self.snapshots)).encode() if self.snapshots else b"")
        for name in _listing(folder):
            digest.update(name.encode())
            digest.update(hashlib.sha256((folder / name).read_bytes()).digest())
        commit = digest.hexdigest()
        self.snapshots[commit] = folder
        self.refs[revision] = commit
        return commit

    def resolve(self, revision: str | None) -> str | None:
        revision = revision or self.default
        if revision in self.snapshots:
            return revision
        return self.refs.get(revision)

    # the head of the default branch (what the download API serves without a revision)
    @property
    def commit(self) -> str:
        return self.refs[self.default]

    @property
    def folder(self) -> pathlib.Path:
        return self.snapshots[self.commit]

    @property
    def files(self) -> list[str]:
        return _listing(self.folder)

    @property
    def revisions(self) -> set[str]:
        return set(self.refs) | set(self.snapshots)


def _listing(folder: pathlib.Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    # -------------------------------------------------------------- helpers
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload: Any) -> None:
        self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def _error(self, code: str, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        self._send(
            404,
            body,
            {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"},
        )

    def _repo(self, repo_id: str) -> _Repo | None:
        return self.server.repos.get(repo_id)

    def _info(self, repo: _Repo, commit: str) -> dict[str, Any]:
        return {
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "sha": commit,
            "private": False,
            "disabled": False,
            "gated": False,
            "tags": [],
            "downloads": 0,
            "likes": 0,
            "lastModified": "2024-01-01T00:00:00.000Z",
            "createdAt": "2024-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": name} for name in _listing(repo.snapshots[commit])],
        }

    # -------------------------------------------------------------- routes
    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        self.server.requests.append((self.command, self.path))
        parsed = urllib.parse.urlparse(self.path)
        parts = [urllib.parse.unquote(p) for p in parsed.path.strip("/").split("/")]
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            repo = self._repo("/".join(parts[2:4]))
            if repo is None:
                return self._error("RepoNotFound", "Repository not found")
            rest = parts[4:]
            if not rest:
                return self._json(self._info(repo, repo.commit))
            if rest[0] in ("revision", "tree") and len(rest) >= 2:
                commit = repo.resolve(rest[1])
                if commit is None:
                    return self._error("RevisionNotFound", f"Invalid rev id: {rest[1]}")
                if rest[0] == "revision":
                    return self._json(self._info(repo, commit))
                prefix = "/".join(rest[2:])
                entries = []
                folder = repo.snapshots[commit]
                for name in _listing(folder):
                    if prefix and not name.startswith(prefix.rstrip("/") + "/"):
                        continue
                    data = (folder / name).read_bytes()
                    entries.append(
                        {
                            "type": "file",
                            "path": name,
                            "size": len(data),
                            "oid": _git_blob_sha1(data),
                        }
                    )
                return self._json(entries)
            return self._error("EntryNotFound", "Unknown API route")
        if len(parts) >= 5 and parts[2] == "resolve":
            repo = self._repo("/".join(parts[:2]))
            if repo is None:
                return self._error("RepoNotFound", "Repository not found")
            commit = repo.resolve(parts[3])
            if commit is None:
                return self._error("RevisionNotFound", f"Invalid rev id: {parts[3]}")
            name = "/".join(parts[4:])
            if name not in _listing(repo.snapshots[commit]):
                return self._error("EntryNotFound", f"{name} does not exist")
            data = (repo.snapshots[commit] / name).read_bytes()
            etag = hashlib.sha256(data).hexdigest()
            return self._send(
                200,
                data,
                {
                    "X-Repo-Commit": commit,
                    "ETag": f'"{etag}"',
                    "Content-Type": "application/octet-stream",
                    "Accept-Ranges": "none",
                },
            )
        return self._error("RepoNotFound", "Unknown route")

    def do_POST(self) -> None:  # noqa: N802
        self.server.requests.append((self.command, self.path))
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parsed = urllib.parse.urlparse(self.path)
        parts = [urllib.parse.unquote(p) for p in parsed.path.strip("/").split("/")]
        if parts == ["api", "repos", "create"]:
            payload = json.loads(body or b"{}")
            repo_id = f"{payload.get('organization')}/{payload['name']}"
            if repo_id not in self.server.repos:
                self.server.repos[repo_id] = _Repo(repo_id, None, "main")
            return self._json({"url": f"{self._base()}/{repo_id}", "name": repo_id})
        if parts == ["api", "validate-yaml"]:
            return self._json({"errors": [], "warnings": []})
        if parts[:2] == ["api", "models"] and len(parts) >= 6:
            repo = self._repo("/".join(parts[2:4]))
            if repo is None:
                return self._error("RepoNotFound", "Repository not found")
            action, revision = parts[4], "/".join(parts[5:])
            if action == "preupload":
                files = json.loads(body)["files"]
                return self._json(
                    {
                        "files": [
                            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                            for f in files
                        ]
                    }
                )
            if action == "commit":
                return self._commit(repo, revision, body)
        return self._error("RepoNotFound", "Unknown route")

    def _base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _commit(self, repo: _Repo, revision: str, body: bytes) -> None:
        folder = pathlib.Path(tempfile.mkdtemp(prefix="commit-", dir=self.server.storage))
        if repo.resolve(revision):  # start from the branch's files
            shutil.copytree(repo.snapshots[repo.resolve(revision)], folder, dirs_exist_ok=True)
        for line in body.splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                value = item["value"]
                target = folder / value["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(base64.b64decode(value["content"]))
            elif item["key"] == "deletedFile":
                (folder / item["value"]["path"]).unlink(missing_ok=True)
        commit = repo.add_commit(folder, revision)
        return self._json(
            {"commitUrl": f"{self._base()}/{repo.repo_id}/commit/{commit}", "commitOid": commit}
        )


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    repos: dict[str, _Repo]
    requests: list[tuple[str, str]]
    storage: str


class HubServer:
    """Serves repos on `http://127.0.0.1:<port>` with the Hub's download API.

    Args:
        host: interface to bind (loopback by default).
        port: 0 picks a free port.

    Attributes:
        url: the endpoint to put in `HF_ENDPOINT`.
        requests: `(method, path)` of every request served (to assert offline use).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = _Server((host, port), _Handler)
        self._server.repos = {}
        self._server.requests = []
        self._storage = tempfile.TemporaryDirectory(prefix="kclr-hub-")
        self._server.storage = self._storage.name
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[tuple[str, str]]:
        return self._server.requests

    def add_repo(self, repo_id: str, folder: str | os.PathLike, revision: str = "main") -> str:
        """Serves `folder` as `repo_id` at `revision`; returns the (fake) commit hash."""
        repo = _Repo(repo_id, pathlib.Path(folder), revision)
        self._server.repos[repo_id] = repo
        return repo.commit

    def repo_files(self, repo_id: str, revision: str | None = None) -> dict[str, bytes]:
        """The files of `repo_id` at `revision` (default branch by default)."""
        repo = self._server.repos[repo_id]
        folder = repo.snapshots[repo.resolve(revision)]
        return {name: (folder / name).read_bytes() for name in _listing(folder)}

    def start(self) -> HubServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if getattr(self, "_storage", None) is not None:
            self._storage.cleanup()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class StaticServer(HubServer):
    """Serves the files under `root` by path (`GET /a/b.zip` -> `root/a/b.zip`)."""

    def __init__(self, root: str | os.PathLike, host: str = "127.0.0.1", port: int = 0) -> None:
        root = pathlib.Path(root)

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=os.fspath(root), **kwargs)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                self.server.requests.append(("GET", self.path))
                super().do_GET()

        self._server = _Server((host, port), Handler)
        self._server.repos = {}
        self._server.requests = []
        self._storage = None
        self._thread = None
