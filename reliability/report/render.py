"""Turning an executed notebook into the evidence an approver reads: HTML, then a PDF.

nbconvert's lab template without input cells, then WeasyPrint: no LaTeX, no browser,
no network at any step (remote URLs are refused), Arabic renders, and the same input
gives the same bytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

_PAGE_CSS = """
@page {
  size: A4;
  margin: 20mm 14mm 18mm 14mm;
  @top-@START@ { content: "@TITLE@"; font: 8.5pt "DejaVu Sans", sans-serif; color: #444; direction: @DIR@; }
  @top-@END@ { content: "@BADGE@"; font: bold 8.5pt "DejaVu Sans", sans-serif; color: @COLOR@; direction: @DIR@; }
  @bottom-center { content: @PAGE@; font: 8.5pt "DejaVu Sans", sans-serif; color: #444; direction: @DIR@; }
}
html, body { font-family: "DejaVu Sans", "Noto Sans", sans-serif; font-size: 9.5pt; }
body { margin: 0 !important; padding: 0 !important; }
.jp-Cell, .jp-OutputArea-output, .jp-RenderedHTMLCommon { padding: 0 !important; margin: 0 !important; }
.jp-Notebook { padding: 0 !important; }
/* The lab template lays cells out as flex boxes, which WeasyPrint never splits across pages: a tall
   output would leave a blank page behind it, and a page break inside one would be ignored. */
.jp-Cell, .jp-Cell-outputWrapper, .jp-Cell-inputWrapper, .jp-OutputArea, .jp-OutputArea-child, .jp-InputArea,
.jp-MarkdownOutput, .jp-RenderedHTMLCommon { display: block !important; overflow: visible !important; }
.jp-OutputArea-prompt, .jp-InputPrompt, .jp-OutputPrompt { display: none !important; }
.jp-RenderedHTMLCommon table { font-size: 7.5pt; border-collapse: collapse; max-width: 100%;
                               table-layout: auto; margin: 4pt 0; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { padding: 1.5pt 4pt; word-break: normal;
                               overflow-wrap: break-word; }
pre, code { white-space: pre-wrap !important; word-break: break-all; overflow-wrap: anywhere; font-size: 7.5pt; }
img { max-width: 100% !important; height: auto !important; }
h1 { font-size: 16pt; } h2 { font-size: 13pt; page-break-after: avoid; } h3 { font-size: 11pt; }
.jp-Cell { page-break-inside: auto; }
.celltag_report-new-page { break-before: page; }  /* a cell tagged so starts a page (after page 1) */
table, figure, img { page-break-inside: avoid; }
"""


def translate_headings(nb: Any, lang: str) -> Any:
    """The notebook's markdown headings (and the opening paragraph) in ``lang``, right to left for Arabic.

    The prose under them stays in English; the decision page, drawn by the notebook itself, is
    already in ``lang``.
    """
    import html

    from reliability.report import i18n

    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines, title = [], False
        for line in cell.source.splitlines():
            level = len(line) - len(line.lstrip("#"))
            text = i18n.heading(line[level:], lang) if 0 < level <= 6 and line[level:level + 1] == " " else None
            if text is None:
                lines.append(line)
                continue
            lines.append(f'<h{level} dir="rtl" lang="ar" style="text-align:right">{html.escape(text)}</h{level}>')
            title = title or line[level:].strip() == next(iter(i18n.HEADINGS_AR))
        if title:  # the opening paragraph states the rule the report enforces
            lines = [lines[0], f'<p dir="rtl" lang="ar" style="text-align:right">{html.escape(i18n.INTRO_AR)}</p>']
        cell.source = "\n".join(lines)
    return nb


def to_html(notebook: Path, out: Path, *, lang: str = "en") -> Path:
    """The executed notebook as self-contained HTML, code cells hidden (lab template)."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = translate_headings(nbformat.read(str(notebook), as_version=4), lang)
    exporter = HTMLExporter(template_name="lab", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    # Golden cells that only repeat page 1 for nbval are left out of what people read.
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"report-hide"}), enabled=True)
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


def _document(html_file: Path, *, title: str, verdict: str, lang: str = "en") -> Any:
    """The laid-out A4 pages (WeasyPrint), with the title and verdict in the header."""
    import logging

    from weasyprint import CSS, HTML

    from reliability.report import i18n

    t = i18n.texts(lang)
    color = {"GO": "#1a7f37", "NO-GO": "#cf222e"}.get(verdict, "#9a6700")

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    page_css = (_PAGE_CSS.replace("@TITLE@", esc(title)).replace("@BADGE@", esc(t["badge"].format(verdict=verdict)))
                .replace("@COLOR@", color).replace("@PAGE@", t["page"]))
    rtl = lang == "ar"  # the header runs right to left: the title on the right, the verdict on the left
    for key, val in (("@START@", "right" if rtl else "left"), ("@END@", "left" if rtl else "right"),
                     ("@DIR@", "rtl" if rtl else "ltr")):
        page_css = page_css.replace(key, val)
    # WeasyPrint logs every ignored CSS property of the lab template; keep the CLI readable.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    doc = HTML(filename=str(html_file), url_fetcher=_no_network_fetcher(), base_url=str(html_file.parent))
    return doc.render(stylesheets=[CSS(string=page_css)])


def to_pdf(html_file: Path, out: Path, *, title: str, verdict: str, lang: str = "en") -> Path:
    """A4 PDF with the title and verdict in the header and page numbers in the footer."""
    _document(html_file, title=title, verdict=verdict, lang=lang).write_pdf(str(out))
    return out


def overflows(html_file: Path, *, title: str = "", verdict: str = "") -> list[tuple[int, str, float]]:
    """Tables, figures and code blocks wider than the page's content box: (page, tag, points over).

    A table cut at the page edge loses its last columns without a trace, so the report's layout
    test asks for an empty list.
    """
    found = []
    for number, page in enumerate(_document(html_file, title=title, verdict=verdict).pages, start=1):
        box = page._page_box  # WeasyPrint's laid-out tree: the only place widths are known
        right = box.content_box_x() + box.width
        for child in box.descendants():
            if getattr(child, "element_tag", None) in ("table", "img", "svg", "pre"):
                over = child.position_x + child.margin_width() - right
                if over > 0.5:
                    found.append((number, str(child.element_tag), round(over * 0.75, 1)))  # px -> pt
    return sorted(set(found))
