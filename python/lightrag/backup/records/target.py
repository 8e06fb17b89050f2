"""Naming a LightRAG graph's storages without its code: :class:`StorageConfig`.

The same names and environment variables LightRAG's own server reads
(``LIGHTRAG_KV_STORAGE``, ``LIGHTRAG_VECTOR_STORAGE``, ``LIGHTRAG_GRAPH_STORAGE``,
``LIGHTRAG_DOC_STATUS_STORAGE``, ``WORKING_DIR``, ``WORKSPACE``, ``POSTGRES_*``,
``REDIS_URI``, ``MILVUS_*``), from the environment or a ``.env`` file. :func:`opened` opens
such a graph in this process with no LLM and an embedding function that refuses to embed:
enough to back it up or restore into it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any, AsyncIterator, Mapping, Optional

from ..errors import InvalidInputError
from . import native

FILE_STORAGES = {
    "kv_storage": "JsonKVStorage",
    "vector_storage": "NanoVectorDBStorage",
    "graph_storage": "NetworkXStorage",
    "doc_status_storage": "JsonDocStatusStorage",
}
_ENV_NAMES = {
    "kv_storage": "LIGHTRAG_KV_STORAGE",
    "vector_storage": "LIGHTRAG_VECTOR_STORAGE",
    "graph_storage": "LIGHTRAG_GRAPH_STORAGE",
    "doc_status_storage": "LIGHTRAG_DOC_STATUS_STORAGE",
}
#: The connection variables of each backend (passed to the storages through the environment,
#: which is how LightRAG's storages read them).
BACKEND_VARIABLES = ("POSTGRES_", "REDIS_", "MILVUS_", "MONGO_", "NEO4J_", "QDRANT_", "MEMGRAPH_", "OPENSEARCH_")


@dataclasses.dataclass(frozen=True)
class StorageConfig:
    """Where a LightRAG graph lives: its four storage classes, working dir and workspace, and
    the backend variables (``POSTGRES_HOST``, ``REDIS_URI``, ...) its storages connect with."""

    kv_storage: str = FILE_STORAGES["kv_storage"]
    vector_storage: str = FILE_STORAGES["vector_storage"]
    graph_storage: str = FILE_STORAGES["graph_storage"]
    doc_status_storage: str = FILE_STORAGES["doc_status_storage"]
    working_dir: str = "./rag_storage"
    workspace: str = ""
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: The embedding model the graph's vectors come from (``EMBEDDING_MODEL``,
    #: ``EMBEDDING_DIM``): PostgreSQL and Milvus name their vector tables after it. A records
    #: snapshot carries its own; these are for a file graph restored into databases.
    embedding_model: Optional[str] = None
    embedding_dim: Optional[int] = None

    @classmethod
    def from_env(
        cls, environ: Optional[Mapping[str, str]] = None, *, env_file: "str | os.PathLike[str] | None" = ".env"
    ) -> "StorageConfig":
        """Read the variables LightRAG's server reads; a ``.env`` file fills what the
        environment leaves unset (as LightRAG's server does)."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            from dotenv import dotenv_values  # python-dotenv comes with lightrag-hku

            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(dict(os.environ if environ is None else environ))
        storages = {field: values.get(name) or FILE_STORAGES[field] for field, name in _ENV_NAMES.items()}
        return cls(
            **storages,
            working_dir=values.get("WORKING_DIR") or "./rag_storage",
            workspace=values.get("WORKSPACE") or "",
            env={k: v for k, v in values.items() if k.startswith(BACKEND_VARIABLES)},
            embedding_model=values.get("EMBEDDING_MODEL") or None,
            embedding_dim=_int_or_none(values.get("EMBEDDING_DIM"), "EMBEDDING_DIM"),
        )

    def storages(self) -> dict[str, str]:
        return {field: getattr(self, field) for field in FILE_STORAGES}

    def describe(self) -> str:
        """The storages and where they connect, without secrets."""
        parts = [f"{field.removesuffix('_storage')}={cls}" for field, cls in self.storages().items()]
        where = {k: v for k, v in self.env.items() if "PASSWORD" not in k and "TOKEN" not in k and "KEY" not in k}
        return ", ".join(parts) + f", workspace={self.workspace!r}" + (f", {where}" if where else "")


def embedding_of(config: StorageConfig) -> tuple[int, Optional[str]]:
    """The embedding dimension and model name to open ``config``'s graph with: its
    ``EMBEDDING_DIM``/``EMBEDDING_MODEL``, else what a file vector store records."""
    if config.embedding_dim:
        return int(config.embedding_dim), config.embedding_model
    folder = Path(config.working_dir, config.workspace) if config.workspace else Path(config.working_dir)
    dim = file_graph_dimension(folder) if config.vector_storage == "NanoVectorDBStorage" else None
    if dim is not None:
        return dim, config.embedding_model
    raise InvalidInputError(
        "set EMBEDDING_DIM (and EMBEDDING_MODEL) as the graph's LightRAG server has them: vector stores are "
        "opened, and PostgreSQL and Milvus name their tables, by the embedding model"
    )


def file_graph_dimension(folder: Path) -> Optional[int]:
    """The embedding dimension a NanoVectorDB file in ``folder`` records (``None`` without
    one). Raises :class:`InvalidInputError` for a vector file that is not JSON."""
    import json

    for name in ("vdb_chunks.json", "vdb_entities.json", "vdb_relationships.json"):
        path = folder / name
        if path.is_file():
            try:
                dim = json.loads(path.read_text(encoding="utf-8")).get("embedding_dim")
            except ValueError as error:
                raise InvalidInputError(f"{path} is not valid JSON: {error}") from None
            if isinstance(dim, int):
                return dim
    return None


def _int_or_none(value: Optional[str], name: str) -> Optional[int]:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInputError(f"{name}={value!r} is not a whole number") from None


def storage_config_of(rag: Any) -> StorageConfig:
    """The configuration of a live instance (class names; connection variables as set now)."""
    return StorageConfig(
        kv_storage=type(rag.full_docs).__name__,
        vector_storage=type(rag.chunks_vdb).__name__,
        graph_storage=type(rag.chunk_entity_relation_graph).__name__,
        doc_status_storage=type(rag.doc_status).__name__,
        working_dir=str(rag.working_dir),
        workspace=getattr(rag, "workspace", "") or "",
        env={k: v for k, v in os.environ.items() if k.startswith(BACKEND_VARIABLES)},
    )


def source_of(rag: Any) -> str:
    """What identifies a database-backed graph as one source: its storages, where they
    connect, and its workspace (recorded as the snapshot's source)."""
    parts = []
    for storage in (rag.full_docs, rag.doc_status, rag.chunks_vdb, rag.chunk_entity_relation_graph):
        parts.append(f"{type(storage).__name__}@{_address(storage)}")
    return "records:" + ";".join(parts)


def _address(storage: Any) -> str:
    backend = native.backend_of(storage)
    if backend == "files":
        return str(getattr(storage, "global_config", {}).get("working_dir", ""))
    if backend == "postgres":
        db = getattr(storage, "db", None)
        host = getattr(db, "host", "?")
        return f"postgres://{host}:{getattr(db, 'port', '?')}/{getattr(db, 'database', '?')}"
    if backend == "redis":
        url = str(getattr(storage, "_redis_url", "?"))
        return url.split("@")[-1]  # no credentials
    return backend


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Any:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _check_postgres_pool(config: StorageConfig) -> None:
    """LightRAG keeps one PostgreSQL pool per process: a target in another PostgreSQL
    database than the one this process is connected to cannot be opened here."""
    if "PG" not in "".join(config.storages().values()):
        return
    from lightrag.kg.postgres_impl import ClientManager

    db = ClientManager._instances.get("db")
    if db is None:
        return
    wanted = {
        "host": config.env.get("POSTGRES_HOST", os.environ.get("POSTGRES_HOST", "localhost")),
        "port": str(config.env.get("POSTGRES_PORT", os.environ.get("POSTGRES_PORT", "5432"))),
        "database": config.env.get("POSTGRES_DATABASE", os.environ.get("POSTGRES_DATABASE", "postgres")),
    }
    current = {"host": str(db.host), "port": str(db.port), "database": str(db.database)}
    if wanted != current:
        raise InvalidInputError(
            f"this process is connected to PostgreSQL {current} and LightRAG keeps one PostgreSQL pool per process; "
            f"restore into {wanted} from another process (`lightrag-backup restore --into-env FILE`)"
        )


class _RefusingEmbedding:
    """An embedding function with the snapshot's model name and dimension that never embeds:
    a restore replaces it by a replay of the saved vectors, and a backup never embeds."""

    def __init__(self, dim: int, model_name: Optional[str]) -> None:
        self.embedding_dim = dim
        self.model_name = model_name

    async def __call__(self, texts: Any, **kwargs: Any) -> Any:
        raise InvalidInputError("lightrag-backup opened this graph without an embedding model; it never embeds")


async def _no_llm(*args: Any, **kwargs: Any) -> str:
    raise InvalidInputError("lightrag-backup opened this graph without an LLM; it never calls one")


@contextlib.asynccontextmanager
async def opened(config: StorageConfig, *, embedding_dim: int, model_name: Optional[str]) -> AsyncIterator[Any]:
    """A LightRAG instance on ``config``'s storages, initialised, with no LLM and an embedding
    function that refuses to embed; finalised when the block ends."""
    from lightrag.lightrag import LightRAG
    from lightrag.utils import EmbeddingFunc, Tokenizer

    from ..offline_graph import CharTokenizer

    _check_postgres_pool(config)
    refusing = _RefusingEmbedding(embedding_dim, model_name)
    with _environment(config.env):
        Path(config.working_dir).mkdir(parents=True, exist_ok=True)
        try:
            rag = LightRAG(
                working_dir=str(config.working_dir),
                workspace=config.workspace,
                llm_model_func=_no_llm,
                embedding_func=EmbeddingFunc(embedding_dim=embedding_dim, func=refusing, model_name=model_name),
                tokenizer=Tokenizer("char", CharTokenizer()),
                **config.storages(),
            )
        except (ValueError, ImportError) as error:
            raise InvalidInputError(f"cannot open the graph ({config.describe()}): {error}") from None
        await rag.initialize_storages()
    try:
        yield rag
    finally:
        await rag.finalize_storages()
