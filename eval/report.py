"""``manipstack demo``: run every capability at demo size and render one HTML report.

Each capability contributes a *demo section*: a function ``demo(out_dir: Path, seed: int) -> DemoSection``
listed in :data:`DEMO_SECTIONS`. It writes its images/videos/metrics under ``out_dir`` and returns what
to show. A section that fails is shown with its error instead of stopping the whole report.
"""

from __future__ import annotations

import html
import importlib
import json
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import tyro

from manipstack.envs.data.provenance import run_metadata

# (title, "module:function"); each function takes (out_dir, seed) and returns a DemoSection.
DEMO_SECTIONS: list[tuple[str, str]] = [
    ("Foundation: scripted Panda pick", "manipstack.eval.demo_pick:demo"),
    ("VPG push-grasp Q-learning", "manipstack.eval.vpg:demo"),
    ("Dexterous grasp synthesis", "manipstack.eval.grasp_demo:demo"),
    ("Category-level 9-DoF pose (Diff9D)", "manipstack.eval.pose:demo"),
]


@dataclass
class DemoSection:
    """What one capability shows in the report. Paths are relative to the report folder or absolute."""

    title: str
    summary: str
    metrics: dict[str, float | int | str] = field(default_factory=dict)
    images: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)


@dataclass
class DemoConfig:
    """Run every capability at demo size and write an HTML report."""

    out: Path = Path("reports/demo")
    """Report folder; index.html is written there."""
    seed: int = 0
    """Seed for every random choice."""
    only: str | None = None
    """Run only sections whose title contains this text (case-insensitive)."""


def _media_html(path: Path, out_dir: Path) -> str:
    rel = html.escape(str(path.relative_to(out_dir) if path.is_absolute() else path))
    if path.suffix in (".mp4", ".webm"):
        return f'<video src="{rel}" controls loop muted width="480"></video>'
    return f'<img src="{rel}" style="max-width:480px;margin:4px">'


def render_html(sections: list[DemoSection], meta: dict[str, object], out_dir: Path) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>manipstack demo</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px}section{margin-bottom:2em}</style></head><body>",
        "<h1>manipstack demo report</h1>",
        f"<p>{html.escape(json.dumps(meta))}</p>",
    ]
    for sec in sections:
        parts.append(f"<section><h2>{html.escape(sec.title)}</h2><p>{html.escape(sec.summary)}</p>")
        if sec.metrics:
            rows = "".join(
                f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in sec.metrics.items()
            )
            parts.append(f"<table><tr><th>metric</th><th>value</th></tr>{rows}</table>")
        parts.extend(_media_html(Path(p), out_dir) for p in [*sec.images, *sec.videos])
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)


def run_demo(config: DemoConfig) -> Path:
    """Run the selected sections and write ``index.html`` + ``metrics.json``; returns the index path."""
    out = config.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    sections: list[DemoSection] = []
    for title, target in DEMO_SECTIONS:
        if config.only and config.only.lower() not in title.lower():
            continue
        print(f"[demo] {title} ...", flush=True)
        start = time.time()
        module_name, func_name = target.split(":")
        try:
            section = getattr(importlib.import_module(module_name), func_name)(out, config.seed)
        except Exception:  # one broken capability must not hide the others
            section = DemoSection(title, "FAILED:\n" + traceback.format_exc())
        section.metrics.setdefault("demo_wall_time_s", round(time.time() - start, 1))
        sections.append(section)
        print(f"[demo] {title} done in {time.time() - start:.1f} s", flush=True)
    meta = run_metadata(config.seed)
    (out / "metrics.json").write_text(
        json.dumps({**meta, "sections": {s.title: s.metrics for s in sections}}, indent=2, default=str)
    )
    index = out / "index.html"
    index.write_text(render_html(sections, meta, out))
    print(f"[demo] report: {index}")
    return index


def main(argv: list[str] | None = None) -> None:
    run_demo(tyro.cli(DemoConfig, args=argv))


if __name__ == "__main__":
    main()
