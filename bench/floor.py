"""The machine's floor for each operation, and where lightrag-backup's time goes beside it.

``floor(graph)`` runs ``examples/floor.rs`` (``cargo run --release --example floor``) on the
graph's own bytes: the CPU of the least work any tool must do with them (read, chunk, decode,
hash, compress, seal, write), spread over every core. ``where_time_goes`` runs one command under
``perf record`` (Debian ``linux-perf``) and sorts its CPU samples into the same stages, plus
Python, memory (copies, page faults) and the rest of the kernel. ``section`` writes both beside
the measured times, as issue 34 asks: how far each operation is from the floor, and why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (stage, pattern on "dso symbol"): the first that matches takes the sample.
STAGES: list[tuple[str, re.Pattern[str]]] = [
    ("key derivation (Argon2id)", re.compile(r"argon2", re.I)),
    ("chunking", re.compile(r"fastcdc|cut_gear|chunker|Cutter")),
    ("hashing", re.compile(r"blake3|sha2|sha256", re.I)),
    ("compression", re.compile(r"ZSTD|HUF_|HIST_|FSE_|zstd", re.I)),
    ("encryption", re.compile(r"aes|gcm|ghash|ring_core", re.I)),
    ("base64", re.compile(r"base64", re.I)),
    ("file I/O (kernel)", re.compile(r"\[kernel\S*\]\s+\[k\]\s+(_copy_to_iter|copy_folio_from_iter|copy_page_to_iter|"
                                     r"filemap|ext4|generic_perform_write|iomap|blk|bio|nvme|virtio|"
                                     r"folio|xas_|__filemap|file_read|vfs_|jbd2|mark_buffer|"
                                     r"dio|submit)")),
    ("memory (copies, page faults)", re.compile(r"memmove|memcpy|memset|memcmp|malloc|_int_free|free|realloc|"
                                                r"page_fault|clear_page|do_anonymous_page|handle_mm_fault|"
                                                r"unmap_page|alloc_pages|alloc_frozen|mas_|vma_|zap_|lru|"
                                                r"memcg|charge|mmap|munmap|brk", re.I)),
    ("Python", re.compile(r"python|libpython|\s_?Py|\sPy", re.I)),
    ("lightrag-backup's own code (index, framing, pipeline)", re.compile(r"lightrag_backup::|_native\.abi3")),
    ("kernel, other", re.compile(r"\[kernel")),
]
STAGE_NAMES = [name for name, _ in STAGES] + ["other"]


def floor(graph: Path) -> dict | None:
    """The floor of each operation on this machine for ``graph``; ``None`` without cargo."""
    if shutil.which("cargo") is None:
        return None
    # Release, for numbers; the harness's own test says "dev", whose build `cargo test` made.
    profile = os.environ.get("LRB_BENCH_CARGO_PROFILE", "release")
    build = subprocess.run(["cargo", "build", "--quiet", "--profile", profile, "--example", "floor"], cwd=ROOT,
                           capture_output=True, text=True)
    if build.returncode != 0:
        raise RuntimeError(f"cannot build examples/floor.rs: {build.stderr[-2000:]}")
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = target / ("debug" if profile == "dev" else profile) / "examples" / "floor"
    runs = []
    for _ in range(3):
        out = subprocess.run([str(binary), str(graph)], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    # The median run by its total floor: every figure then comes from one run.
    runs.sort(key=lambda r: sum(r["floors"].values()))
    return runs[len(runs) // 2]


def where_time_goes(command: list[str], env: dict[str, str], cwd: Path | None = None) -> dict | None:
    """Wall time, CPU time and CPU per stage of ``command``; ``None`` without ``perf``."""
    if shutil.which("perf") is None:
        return None
    os.sync()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "perf.data"
        timing = Path(tmp) / "time"
        run = subprocess.run(["perf", "record", "-q", "-F", "1999", "-o", str(data), "--",
                              "/usr/bin/time", "-f", "%e", "-o", str(timing), *command], env=env, cwd=cwd,
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed under perf: {run.stderr[-2000:]}")
        wall = float(timing.read_text().split()[-1])
        report = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "dso,sym", "--stdio",
                                 "-q", "-F", "sample,dso,sym"], capture_output=True, text=True, check=True)
    stages = dict.fromkeys(STAGE_NAMES, 0)
    samples = 0
    for line in report.stdout.splitlines():
        parts = line.split(None, 1)
        if len(parts) != 2 or not parts[0].isdigit():
            continue
        count, where = int(parts[0]), parts[1]
        samples += count
        stage = next((name for name, pattern in STAGES if pattern.search(where)), "other")
        stages[stage] += count
    return {"wall": wall, "cpu": samples / 1999, "stages": {k: v / 1999 for k, v in stages.items()}}


def true_change(before: Path, after: Path) -> dict[str, int]:
    """The bytes a change step really adds, as issue 34 defines them: the new embedding rows
    (float32, which do not compress) and the zstd-3 of the text that changed (lines of the
    JSON and GraphML files, records of the vector files, not found in the version before)."""
    import base64

    import zstandard

    rows = text = 0
    changed: list[bytes] = []
    for new in sorted(after.iterdir()):
        old = before / new.name
        if new.name.startswith("vdb_") and new.suffix == ".json":
            doc_new = json.loads(new.read_bytes())
            doc_old = json.loads(old.read_bytes()) if old.exists() else {"data": [], "matrix": ""}
            width = 4 * int(doc_new.get("embedding_dim", 0) or 1)
            matrix_old = base64.b64decode(doc_old.get("matrix", ""))
            known = {matrix_old[i:i + width] for i in range(0, len(matrix_old), width)}
            matrix_new = base64.b64decode(doc_new.get("matrix", ""))
            rows += sum(width for i in range(0, len(matrix_new), width) if matrix_new[i:i + width] not in known)
            seen = {json.dumps(r, sort_keys=True) for r in doc_old.get("data", [])}
            changed += [json.dumps(r, sort_keys=True).encode() for r in doc_new.get("data", [])
                        if json.dumps(r, sort_keys=True) not in seen]
        else:
            seen_lines = set(old.read_bytes().splitlines()) if old.exists() else set()
            changed += [line for line in new.read_bytes().splitlines() if line not in seen_lines]
    joined = b"\n".join(changed)
    text = len(zstandard.ZstdCompressor(level=3).compress(joined)) if joined else 0
    return {"rows": rows, "text": text, "total": rows + text}


OPERATIONS = ["first backup", "backup after change", "restore", "verify (read all data)"]


def profile_operations(tool, versions: list[Path], work: Path, load, warm) -> dict[str, dict]:
    """One round of ``tool`` (lightrag-backup) with each operation under ``perf``."""
    graph = work / "graph" / "rag_storage"
    tool.reset()
    tool.init()
    out: dict[str, dict] = {}
    load(versions[0], graph)
    out["first backup"] = where_time_goes(tool._cli("snapshot", "-w", str(graph), "-g", "bench"), tool.env)
    load(versions[1], graph)
    out["backup after change"] = where_time_goes(tool._cli("snapshot", "-w", str(graph), "-g", "bench"), tool.env)
    listed = subprocess.run(tool._cli("--json", "list", "-g", "bench"), capture_output=True, text=True, check=True,
                            env=tool.env)
    newest = json.loads(listed.stdout)[-1]["snapshot_id"]
    target = work / "restored"
    shutil.rmtree(target, ignore_errors=True)
    warm(tool.repo)
    out["restore"] = where_time_goes(tool._cli("restore", newest, "-g", "bench", "--target", str(target),
                                               "--no-safety-snapshot"), tool.env)
    shutil.rmtree(target, ignore_errors=True)
    warm(tool.repo)
    out["verify (read all data)"] = where_time_goes(tool._cli("verify", "-g", "bench"), tool.env)
    tool.reset()
    return out


def section(measured: dict[str, float], machine: dict | None, profiles: dict[str, dict] | None,
            change: tuple[dict[str, int], float] | None = None) -> str:
    """Markdown: each operation's median time beside its floor, and its CPU by stage; with
    ``change`` (the true change and the median bytes added), how close a change step is."""
    lines = []
    if change is not None:
        truth, added = change
        lines += [
            "",
            f"Bytes added by one change step: {added / 1e6:.1f} MB, against a true change of "
            f"{truth['total'] / 1e6:.1f} MB ({truth['rows'] / 1e6:.1f} MB of new embedding rows, "
            f"{truth['text'] / 1e6:.1f} MB of changed text under zstd 3): "
            f"{added / max(truth['total'], 1):.2f}x the true change.",
        ]
    if machine is not None:
        cores = int(machine["cores"])
        st = machine["stages"]
        lines += [
            "",
            f"### The machine's floor ({cores} cores; `examples/floor.rs` on this graph's bytes, median of 3)",
            "",
            "The least work any tool must do with these bytes, each stage timed on one core over the graph "
            f"({machine['graph_bytes'] / 1e6:.1f} MB, {machine['text_bytes'] / 1e6:.1f} MB of it text, "
            f"{machine['stored_bytes'] / 1e6:.1f} MB stored), then spread over every core with no process start: "
            "no tool can do better.",
            "",
            "| stage (one core) | seconds |",
            "|---|---|",
        ]
        lines += [f"| {name} | {seconds:.3f} |" for name, seconds in st.items()]
        lines += ["", "| operation | lightrag-backup (median) | floor | ratio to the floor |", "|---|---|---|---|"]
        for op in OPERATIONS:
            if op in measured and op in machine["floors"]:
                fl = machine["floors"][op]
                lines.append(f"| {op} | {measured[op]:.2f} s | {fl:.2f} s | {measured[op] / fl:.2f}x |")
    if profiles:
        ops = [op for op in OPERATIONS if profiles.get(op)]
        lines += [
            "",
            "### Where lightrag-backup's time goes (CPU seconds by stage, `perf record -F 1999`, one run each)",
            "",
            "| stage | " + " | ".join(ops) + " |",
            "|---|" + "---|" * len(ops),
        ]
        # Every stage, always: a table whose rows come and go with a run's samples reads badly.
        for stage in STAGE_NAMES:
            cells = [f"{profiles[op]['stages'][stage]:.3f}" for op in ops]
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
        lines.append("| **CPU, all stages** | " + " | ".join(f"**{profiles[op]['cpu']:.2f}**" for op in ops) + " |")
        lines.append("| wall time under perf | " + " | ".join(f"{profiles[op]['wall']:.2f}" for op in ops) + " |")
    return "\n".join(lines) + "\n"
