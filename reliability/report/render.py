"""Turning an executed notebook into the evidence an approver reads: HTML, then a PDF.

nbconvert's lab template without input cells, then WeasyPrint: no LaTeX, no browser,
no network at any step (remote URLs are refused), Arabic renders, and the same input
gives the same bytes.
"""
from __future__ import annotations

import html
from pathlib import Path

_PAGE_CSS = """
@page {
  size: A4;
  margin: 20mm 14mm 18mm 14mm;
  @top-left { content: "@TITLE@"; font: 8.5pt "DejaVu Sans", sans-serif; color: #444; }
  @top-right { content: "@BADGE@"; font: bold 8.5pt "DejaVu Sans", sans-serif; color: @COLOR@; }
  @bottom-center { content: "Page " counter(page) " of " counter(pages);
                   font: 8.5pt "DejaVu Sans", sans-serif; color: #444; }
}
html, body { font-family: "DejaVu Sans", "Noto Sans", sans-serif; font-size: 9.5pt; }
body { margin: 0 !important; padding: 0 !important; }
.jp-Cell, .jp-OutputArea-output, .jp-RenderedHTMLCommon { padding: 0 !important; margin: 0 !important; }
.jp-Notebook { padding: 0 !important; }
.jp-OutputArea-prompt, .jp-InputPrompt, .jp-OutputPrompt { display: none !important; }
.jp-RenderedHTMLCommon table { font-size: 7.5pt; border-collapse: collapse; max-width: 100%;
                               table-layout: auto; margin: 4pt 0; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { padding: 1.5pt 4pt; word-break: normal;
                               overflow-wrap: break-word; }
pre, code { white-space: pre-wrap !important; word-break: break-all; overflow-wrap: anywhere; font-size: 7.5pt; }
img { max-width: 100% !important; height: auto !important; }
h1 { font-size: 16pt; } h2 { font-size: 13pt; page-break-after: avoid; } h3 { font-size: 11pt; }
.jp-Cell { page-break-inside: auto; }
table, figure, img { page-break-inside: avoid; }
"""


def to_html(notebook: Path, out: Path) -> Path:
    """The executed notebook as self-contained HTML, code cells hidden (lab template)."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    out.write_text(body, encoding="utf-8")
    return out


def _no_network_fetcher() -> object:
    """A WeasyPrint URL fetcher that allows only inline (data:) and local (file:) resources."""
    try:  # WeasyPrint >= 68
        from weasyprint.urls import URLFetcher

        return URLFetcher(allowed_protocols={"data", "file"})
    except ImportError:  # older WeasyPrint takes a function
        from weasyprint import default_url_fetcher

        def fetch(url: str, *args: object, **kwargs: object) -> dict:
            if url.startswith(("data:", "file:")):
                return default_url_fetcher(url)
            raise ValueError(f"the PDF renderer does not fetch remote resources ({url[:80]})")

        return fetch


def to_pdf(html_file: Path, out: Path, *, title: str, verdict: str) -> Path:
    """A4 PDF with the title and verdict in the header and page numbers in the footer."""
    import logging

    from weasyprint import CSS, HTML

    color = {"GO": "#1a7f37", "NO-GO": "#cf222e"}.get(verdict, "#9a6700")

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    page_css = (_PAGE_CSS.replace("@TITLE@", esc(title)).replace("@BADGE@", esc(f"Verdict: {verdict}"))
                .replace("@COLOR@", color))
    css = CSS(string=page_css)
    # WeasyPrint logs every ignored CSS property of the lab template; keep the CLI readable.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    doc = HTML(filename=str(html_file), url_fetcher=_no_network_fetcher(), base_url=str(html_file.parent))
    doc.write_pdf(str(out), stylesheets=[css])
    return out


def verdict_badge(verdict: str, reasons: list[str]) -> str:
    """The verdict box at the top of the report, as HTML."""
    color = {"GO": "#1a7f37", "NO-GO": "#cf222e"}.get(verdict, "#9a6700")
    items = "".join(f"<li>{html.escape(r)}</li>" for r in reasons)
    return (
        f'<div style="border:3px solid {color};border-radius:6px;padding:8px 14px;margin:6px 0">'
        f'<div style="font-size:20pt;font-weight:bold;color:{color}">{html.escape(verdict)}</div>'
        f'<ul style="margin:4px 0 0 0;padding-left:18px">{items}</ul></div>'
    )
