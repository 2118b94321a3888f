"""The documentation is true: the site builds strictly, the README stays short, every link resolves
inside the repository, and every code example in README.md and docs/*.md is checked by its language,
run or parsed by the project's own code. No servers; a few seconds.

A fenced block's language decides its check (a language not listed here fails, so nobody adds an
untested one): ``toml`` is loaded by the settings loader, ``yaml`` and ``csv`` are parsed (``csv`` as
an incident log), ``console``/``sh``/``bash`` lines that call ``reliability`` are parsed by the
command's own parser and ``make X`` names a Makefile target, ``python`` is run (compiled only when it
is included from a file that other tests run), ``text`` is output and left alone. A block whose body
is ``--8<-- "path"`` (pymdownx.snippets) is checked on the file it includes.
"""
from __future__ import annotations

import inspect
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
DOCS = REPO / "docs"
EXAMPLES = DOCS / "examples"
PAGES = [README, *sorted(DOCS.glob("*.md"))]
README_LIMIT = 10_240
IMAGE_LIMIT = 300_000

#: The only sites a link may leave the repository for: the upstream projects' own sites and DOIs.
UPSTREAM_HOSTS = {"prometheus.io", "www.mkdocs.org", "squidfunk.github.io", "argoproj.github.io",
                  "docs.flagger.app", "playwright.dev", "doi.org"}
LANGUAGES = {"toml", "yaml", "yml", "console", "sh", "bash", "python", "text", "csv"}

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[^\s`{]*)")
SNIPPET = re.compile(r'^\s*-+8<-+\s+"(?P<spec>[^"]+)"\s*$')
SPEC = re.compile(r"^(?P<path>[^:]+)(?::(?P<start>\d*)(?::(?P<end>\d*))?)?$")
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its text, and whether it is a file's."""

    page: Path
    line: int
    lang: str
    text: str
    included: tuple[str, ...] = ()  # the snippet paths its body is made of

    @property
    def id(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}:{self.lang or 'no-language'}"


def snippet(spec: str) -> str:
    """The text ``--8<-- "spec"`` includes: a file of the repository, or lines of it (``path:start:end``)."""
    m = SPEC.match(spec)
    assert m, f"cannot read the snippet {spec!r}"
    path = REPO / m["path"]
    assert path.is_file(), f"the snippet {spec!r} names no file of the repository"
    lines = path.read_text().splitlines()
    if m["start"] is not None:
        start = int(m["start"] or 1) - 1
        end = int(m["end"]) if m["end"] else None
        lines = lines[start:end]
    return "\n".join(lines) + "\n"


def blocks(page: Path, text: str | None = None) -> list[Block]:
    """The fenced blocks of a page, with the Markdown it includes outside a fence searched too."""
    lines = (page.read_text() if text is None else text).splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        outside = SNIPPET.match(line)
        if outside:
            spec = outside["spec"]
            if SPEC.match(spec) and spec.split(":")[0].endswith(".md"):
                found += blocks(REPO / spec.split(":")[0], snippet(spec))
            i += 1
            continue
        if not m:
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not re.match(rf"^ *{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[j]):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        assert j < len(lines), f"{page}:{i + 1}: a code fence is never closed"
        specs = [SNIPPET.match(b) for b in body if b.strip()]
        if specs and all(specs):
            names = tuple(s["spec"] for s in specs if s)
            found.append(Block(page, i + 1, m["lang"], "".join(snippet(n) for n in names), names))
        else:
            assert not any(specs), f"{page}:{i + 1}: a block mixes included files and its own text"
            found.append(Block(page, i + 1, m["lang"], "\n".join(body) + "\n"))
        i = j + 1
    return found


BLOCKS = [b for page in PAGES for b in blocks(page)]


def shell_commands(text: str) -> list[list[str]]:
    """Each command of a shell block, split as the shell would, without leading ``$`` or ``VAR=value``."""
    joined = re.sub(r"\\\n\s*", " ", text)
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("$ "):
            line = line[2:]
        words = shlex.split(line, comments=True)
        while words and ENV.match(words[0]):
            words.pop(0)
        if words:
            commands.append(words)
    return commands


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, flags=re.M))


def check_reliability_command(words: list[str], where: str) -> None:
    """Parse a ``reliability ...`` command with the command's own parser: every option shown exists."""
    from reliability.cli.main import build_parser

    try:
        build_parser().parse_args(words[1:])
    except SystemExit as exc:
        pytest.fail(f"{where}: `{shlex.join(words)}` is not a valid command line (argparse exit {exc.code})")


def strings(value: Any) -> list[str]:
    """Every string in a parsed YAML document."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


# ------------------------------------------------------------------ the site and the README


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=REPO, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    cli = (site / "cli" / "index.html").read_text()
    from reliability.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    for name in commands:  # the hook put every subcommand's --help on the page, under its own heading
        assert f'id="reliability-{name}"' in cli, f"the CLI reference has no section for {name}"
    assert "<!-- cli-reference -->" not in cli and "--max-answer-mb" in cli


def test_the_readme_is_short() -> None:
    size = len(README.read_bytes())
    assert size <= README_LIMIT, f"README.md is {size:,} bytes; keep it under {README_LIMIT:,}: move detail to docs/"


def test_images_are_small() -> None:
    for image in DOCS.glob("images/*"):
        assert image.stat().st_size < IMAGE_LIMIT, f"{image} is {image.stat().st_size:,} bytes"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_links_stay_in_the_repository(page: Path) -> None:
    text = page.read_text()
    assert "../shared" not in text and "shared/seed" not in text, f"{page} points outside the repository"
    prose = re.sub(r"^( *)(`{3,}|~{3,}).*?^\1\2", "", text, flags=re.M | re.S)  # no code blocks
    prose = re.sub(r"`[^`\n]*`", "", prose)  # no code spans
    for m in LINK.finditer(prose):
        target = m["target"]
        url = urlsplit(target)
        if url.scheme:
            assert url.scheme == "https" and url.hostname in UPSTREAM_HOSTS, (
                f"{page}: {target} leaves the repository; only the upstream projects' sites may: {UPSTREAM_HOSTS}")
            continue
        if not url.path:  # an anchor on the same page: MkDocs checks those
            continue
        resolved = (page.parent / url.path).resolve()
        assert resolved.exists(), f"{page}: the link {target} points to nothing"
        assert resolved.is_relative_to(REPO), f"{page}: the link {target} leaves the repository"


# ------------------------------------------------------------------ every code block


def test_every_page_has_its_blocks_found() -> None:
    by_page = {b.page for b in BLOCKS}
    assert README in by_page and DOCS / "gate.md" in by_page and DOCS / "statistics.md" in by_page


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_code_block(block: Block, tmp_path: Path) -> None:
    assert block.lang in LANGUAGES, (
        f"{block.id}: a code block in {block.lang or 'no language'}; use one of {sorted(LANGUAGES)} "
        "(tests/test_docs.py checks each), or teach the test to check the new one")
    check = {"toml": _toml, "yaml": _yaml, "yml": _yaml, "csv": _csv, "python": _python, "text": _text,
             "console": _shell, "sh": _shell, "bash": _shell}[block.lang]
    check(block, tmp_path)


def _text(block: Block, tmp_path: Path) -> None:
    assert block.text.strip(), f"{block.id}: an empty block"


def _toml(block: Block, tmp_path: Path) -> None:
    from reliability import config

    table = tomllib.loads(block.text)
    name = "pyproject.toml" if "tool" in table else "reliability.toml"
    (tmp_path / name).write_text(block.text)
    settings = config.load(tmp_path)  # a ConfigurationError here is the failure, with the key it names
    assert settings.source.endswith(name), f"{block.id}: the settings loader did not read the block"
    settings.sli()
    settings.breakers()


def _yaml(block: Block, tmp_path: Path) -> None:
    document = yaml.safe_load(block.text)
    assert document, f"{block.id}: empty YAML"
    for text in strings(document):  # a CI job's `run:` or `script:` line that calls the gate
        for words in shell_commands(text) if "reliability " in text else []:
            if Path(words[0]).name == "reliability":
                check_reliability_command(words, block.id)


def _csv(block: Block, tmp_path: Path) -> None:
    from reliability.lab import load_incidents

    log = tmp_path / "incidents.csv"
    log.write_text(block.text)
    assert load_incidents(log), f"{block.id}: no incident in the log"


def _python(block: Block, tmp_path: Path) -> None:
    code = compile(block.text, block.id, "exec")
    if not block.included:  # an included file is run by the tests that own it
        exec(code, {"__name__": "docs_example"})


def _shell(block: Block, tmp_path: Path) -> None:
    targets = makefile_targets()
    for words in shell_commands(block.text):
        if Path(words[0]).name == "reliability":
            check_reliability_command(words, block.id)
        elif words[0] == "make":
            named = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
            assert named and set(named) <= targets, f"{block.id}: `{shlex.join(words)}`: no such make target"


# ------------------------------------------------------------------ the examples are the real files


def test_the_ci_examples_are_what_init_writes() -> None:
    from reliability.cli import scaffold

    assert (EXAMPLES / "deploy-gate.github.yml").read_text() == scaffold._github()
    assert (EXAMPLES / "deploy-gate.gitlab.yml").read_text() == scaffold._gitlab()
    assert scaffold._github().rstrip() in README.read_text(), "the README's CI job is not init's"


def test_the_settings_example_is_what_init_writes() -> None:
    from reliability.cli import scaffold

    assert (EXAMPLES / "reliability.toml").read_text() == scaffold._settings("love-backend", 'job="love-backend"')


def test_the_directive_rule_shown_is_the_rule_file() -> None:
    alerts = next(b for b in BLOCKS if b.page.name == "alerts.md" and b.included)
    shown = yaml.safe_load(alerts.text)["groups"][0]["rules"][0]
    real = yaml.safe_load((REPO / "monitoring" / "alerts.yml").read_text())["groups"][0]["rules"][0]
    assert shown == real and shown["alert"] == "High5xxErrorRate"


def test_the_progressive_delivery_examples_call_what_serve_answers() -> None:
    from reliability.cli import serve
    from reliability.errors import ConfigurationError

    source = inspect.getsource(serve)
    argo = yaml.safe_load((EXAMPLES / "argo-analysistemplate.yaml").read_text())
    flagger = yaml.safe_load((EXAMPLES / "flagger-canary.yaml").read_text())
    calls = [(urlsplit(m["provider"]["web"]["url"]), None) for m in argo["spec"]["metrics"]]
    calls += [(urlsplit(h["url"]), h["metadata"]) for h in flagger["spec"]["analysis"]["webhooks"]]
    assert len(calls) == 4
    for url, metadata in calls:
        assert f'"{url.path}"' in source, f"reliability serve answers no {url.path}"
        params = dict(parse_qsl(url.query)) if metadata is None else dict(metadata)
        if "token" in params:  # Flagger's way to carry it: the handler takes it out before the verdict
            assert 'meta.pop("token"' in source
            params.pop("token")
        # The parameters are the ones serve knows: it refuses unknown ones before it asks anything.
        with pytest.raises(ConfigurationError, match=r"^unknown parameter\(s\) zz_probe;"):
            serve.verdict(None, {**params, "zz_probe": "1"})  # type: ignore[arg-type]
