"""Run ``lightrag-backup-server`` (LightRAG's server with the backup routes) offline, for tests.

Everything is the real server; two things stand in for the network this machine does not
have: LightRAG's ``openai`` bindings point at :class:`StubOpenAI` on loopback, and the
tiktoken tokenizer (which downloads its encoding on first use) is replaced by the
character tokenizer. Usage: ``python mounted_server.py [lightrag-server/backup args...]``,
with ``WORKING_DIR``, ``PORT``, ``LIGHTRAG_BACKUP_STORAGE_PATH`` ... in the environment.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from stub_openai import StubOpenAI  # noqa: E402


def offline_tokenizer() -> None:
    import lightrag.lightrag as core
    import lightrag.llm.openai as openai_binding
    import lightrag.utils as utils
    from lightrag.backup.offline_graph import CharTokenizer

    def tiktoken_tokenizer(*_args: object, **_kwargs: object) -> utils.Tokenizer:
        return utils.Tokenizer("char", CharTokenizer())

    core.TiktokenTokenizer = tiktoken_tokenizer  # type: ignore[assignment,misc]
    utils.TiktokenTokenizer = tiktoken_tokenizer  # type: ignore[assignment,misc]
    openai_binding._get_tiktoken_encoding_for_model = lambda _model: CharTokenizer()  # type: ignore[attr-defined]


def main() -> None:
    offline_tokenizer()
    with StubOpenAI(embedding_dim=int(os.environ.get("EMBEDDING_DIM", "16"))) as url:
        for binding in ("LLM", "EMBEDDING"):
            os.environ[f"{binding}_BINDING"] = "openai"
            os.environ[f"{binding}_BINDING_HOST"] = url
            os.environ[f"{binding}_BINDING_API_KEY"] = "stub-key"
        os.environ.setdefault("LLM_MODEL", "stub")
        os.environ.setdefault("EMBEDDING_MODEL", "stub")
        os.environ.setdefault("EMBEDDING_DIM", "16")
        os.environ.setdefault("HOST", "127.0.0.1")
        from lightrag.backup.server import main as server_main

        server_main(sys.argv[1:])


if __name__ == "__main__":
    main()
