"""An OpenAI-compatible HTTP server on loopback answering with the deterministic stub LLM and
embeddings of ``lightrag.backup.offline_graph``: LightRAG's own server talks to it through its
unmodified ``openai`` bindings, so a test runs the real server without network access."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from lightrag.backup.offline_graph import make_embedding_func, stub_llm


def _content(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):  # the multi-part form
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


class _Handler(BaseHTTPRequestHandler):
    server_version = "stub-openai/1"
    embedding_dim = 16

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _json(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": "stub", "object": "model", "owned_by": "test"}]})
        else:
            self._json(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.path.endswith("/chat/completions"):
            self._chat(request)
        elif self.path.endswith("/embeddings"):
            self._embeddings(request)
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def _chat(self, request: dict[str, Any]) -> None:
        messages = request.get("messages") or []
        system = "\n".join(_content(m) for m in messages if m.get("role") == "system")
        prompt = _content(messages[-1]) if messages else ""
        answer = asyncio.run(stub_llm(prompt, system_prompt=system))
        created = int(time.time())
        if request.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece, finish in ((answer, None), ("", "stop")):
                chunk = {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": created, "model": "stub",
                         "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": finish}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            return
        self._json(200, {
            "id": "chatcmpl-stub", "object": "chat.completion", "created": created, "model": request.get("model", "stub"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": len(prompt), "completion_tokens": len(answer), "total_tokens": len(prompt) + len(answer)},
        })

    def _embeddings(self, request: dict[str, Any]) -> None:
        texts = request.get("input")
        texts = [texts] if isinstance(texts, str) else list(texts or [])
        dim = int(request.get("dimensions") or self.embedding_dim)
        vectors = asyncio.run(make_embedding_func(dim).func(texts))
        rows = []
        for index, vector in enumerate(vectors):
            if request.get("encoding_format") == "base64":
                value: Any = base64.b64encode(vector.astype("<f4").tobytes()).decode()
            else:
                value = [float(x) for x in vector]
            rows.append({"object": "embedding", "index": index, "embedding": value})
        self._json(200, {"object": "list", "data": rows, "model": request.get("model", "stub"),
                         "usage": {"prompt_tokens": sum(map(len, texts)), "total_tokens": sum(map(len, texts))}})


class StubOpenAI:
    """``with StubOpenAI() as url:`` serves ``url`` (``http://127.0.0.1:PORT/v1``) until exit."""

    def __init__(self, port: int = 0, embedding_dim: int = 16) -> None:
        handler = type("Handler", (_Handler,), {"embedding_dim": embedding_dim})
        self.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, name="stub-openai", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return self.url

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
