"""Writes the suite's results: results.json (everything), results.md (the summary tables) and PNG
plots (throughput against offered rate, latency percentiles, memory against shard count).
Not a benchmark itself."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from benchmarks.harness import Result


def write_json(path: Path, meta: dict[str, Any], results: list[Result]) -> None:
    body = {"meta": meta, "results": [dataclasses.asdict(r) for r in results]}
    path.write_text(json.dumps(body, indent=1, default=str) + "\n")


def markdown(meta: dict[str, Any], results: list[Result]) -> str:
    m = meta["machine"]
    lines = [
        "# Benchmark results",
        "",
        f"Measured {meta['date']} with `{meta['command']}` ({meta['scale']} scale, figures are medians of "
        f"{meta['repeat']} run(s) unless a row says otherwise).",
        "",
        f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Python {m['python']}, "
        f"{m['platform']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in sorted(meta["versions"].items()))
        + ".",
        "",
    ]
    for r in results:
        lines += [f"## {r.title}", "", "| what | figure | target |", "|---|---|---|"]
        for row in r.rows:
            lines.append(f"| {row.what} | {row.value} | {row.target} |")
        lines += ["", f"({r.seconds:.0f} s)", ""]
    return "\n".join(lines)


def plots(out: Path, results: list[Result]) -> list[Path]:
    """The PNG plots for whichever results are there; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    by_name = {r.name: r for r in results}

    if (r := by_name.get("throughput")) is not None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        top = 0.0
        for workers, fig_data in r.data["by_workers"].items():
            for i, run in enumerate(fig_data["runs"]):
                xs = [s["offered_per_s"] / 1000 for s in run["steps"]]
                ys = [s["delivered_per_s"] / 1000 for s in run["steps"]]
                top = max(top, *xs)
                ax.plot(xs, ys, marker="o", alpha=0.8, label=f"{workers} worker(s)" if i == 0 else None,
                        color=f"C{int(workers) - 1}")  # fmt: skip
        ax.plot([0, top], [0, top], linestyle=":", color="grey", label="everything delivered")
        ax.set_xlabel("offered rate (thousand events/s)")
        ax.set_ylabel("delivered to the bot (thousand events/s)")
        ax.set_title("End-to-end throughput (each line one run)")
        ax.grid(alpha=0.3)
        ax.legend()
        written.append(_save(fig, out / "throughput.png"))
        plt.close(fig)

    if (r := by_name.get("latency")) is not None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        levels = r.data["levels"]
        labels = [f"{lv['fraction']:.0%}\n{lv['rate'] / 1000:,.0f}k/s" for lv in levels]
        for k, name in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
            ax.plot(labels, [lv[k] for lv in levels], marker="o", label=name)
        ax.axhline(5.0, linestyle=":", color="grey", label="5 ms (p99 target at 50%)")
        ax.set_yscale("log")
        ax.set_xlabel("offered rate (share of the highest fully delivered rate)")
        ax.set_ylabel("simulator send to bot handler (ms)")
        ax.set_title("Latency percentiles")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
        written.append(_save(fig, out / "latency.png"))
        plt.close(fig)

    if (r := by_name.get("memory")) is not None:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        points = r.data["points"]
        xs = [pt["shards"] for pt in points]
        ax.plot(xs, [pt["kib_per_shard"] for pt in points], marker="o", label="RSS per idle shard")
        ax.axhline(64, linestyle=":", color="grey", label="64 KiB target")
        ax.set_xscale("log")
        ax.set_xlabel("idle shards (heartbeating, no traffic)")
        ax.set_ylabel("KiB per shard (workers' RSS above baseline)")
        ax.set_ylim(bottom=0)
        ax.set_title("Memory against shard count")
        ax.grid(alpha=0.3)
        ax.legend()
        written.append(_save(fig, out / "memory.png"))
        plt.close(fig)
    return written


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
