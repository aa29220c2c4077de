"""The website in a real browser: the site is built from the committed notebooks (`sphinx-build nbs`, as the README
says), served on 127.0.0.1, crawled once for broken internal links, and three pages (the home page, the AF chapter,
the split chapter) are opened in headless Chromium: no console error or failed request, every image decoded, every
equation rendered by the site's own MathJax. Screenshots of the three pages go to the test's temporary folder.

Needs Debian's `chromium` (`apt-get install -y chromium`; `.ci/run` installs it). Without it the test is skipped,
unless FARMER_REQUIRE_BROWSER=1 (set by CI), which turns the skip into a failure.
"""

import os, re, shutil, subprocess, sys, threading, time
from functools import partial
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urldefrag, urljoin, urlparse
from urllib.request import urlopen

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = {}  # the site fixture's build time, printed by the crawl
PAGES = {'home': 'index.html', 'af': '04_af.html', 'split': '24_split.html'}
CHROMIUM_ARGS = [  # the flags that keep Chromium off the (closed) network and quiet as root in a container
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
]


def chromium() -> str:
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if exe is None:
        msg = 'no chromium on PATH: apt-get install -y chromium'
        if os.environ.get('FARMER_REQUIRE_BROWSER') == '1':
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


class Links(HTMLParser):
    "The ids of a page and every URL it references (`<a href>`, `<img src>`, `<script src>`, `<link href>`)."

    def __init__(self):
        super().__init__()
        self.ids, self.refs, self.next = set(), [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'):
            self.ids.add(a['id'])
        if tag == 'a' and 'next-page' in (a.get('class') or '').split():
            self.next = a.get('href')
        ref = a.get('href') if tag in ('a', 'link') else a.get('src') if tag in ('img', 'script') else None
        if ref and not ref.startswith(('mailto:', 'javascript:', 'data:')):
            self.refs.append(ref)


def crawl(base: str) -> tuple[dict, int, list[str]]:
    "Follow every same-origin reference from the home page once: ({page: its 'next' link}, URLs checked, the broken ones)."
    pages, nexts, queue, seen, broken, anchors = {}, {}, [base + 'index.html'], set(), [], []
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        try:
            with urlopen(url) as r:
                body, kind = r.read(), r.headers.get_content_type()
        except HTTPError as e:
            broken.append(f'{url} ({e.code})')
            continue
        if kind != 'text/html':
            continue
        p = Links()
        p.feed(body.decode('utf-8', 'replace'))
        pages[url], nexts[url[len(base) :]] = p.ids, p.next
        for ref in p.refs:
            full = urljoin(url, ref)
            if urlparse(full).netloc != urlparse(base).netloc:
                continue
            target, frag = urldefrag(full)
            if frag:
                anchors.append((url, target, frag))
            queue.append(target)
    for src, target, frag in anchors:  # a fragment must name an element of its page
        if target in pages and frag not in pages[target]:
            broken.append(f'{target}#{frag} (no such id; linked from {src})')
    return nexts, len(seen), broken


@pytest.fixture(scope='module')
def site(tmp_path_factory) -> Path:
    "The site built from the committed notebooks, warnings as errors (the README's docs command, into a temporary folder)."
    out, t0 = tmp_path_factory.mktemp('site'), time.perf_counter()
    cmd = [sys.executable, '-m', 'sphinx', '-q', '-W', '--keep-going', '-b', 'html', str(ROOT / 'nbs'), str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    errors = [l for l in r.stderr.splitlines() if 'WARNING' in l or 'ERROR' in l]
    assert r.returncode == 0, 'sphinx-build failed:\n' + '\n'.join(errors or r.stderr.splitlines()[-20:])
    BUILD['seconds'] = time.perf_counter() - t0
    return out


@pytest.fixture(scope='module')
def server(site):
    "An HTTP server on 127.0.0.1 serving the site; yields its base URL."

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass

    httpd = ThreadingHTTPServer(('127.0.0.1', 0), partial(Quiet, directory=str(site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown()


@pytest.mark.slow
def test_every_internal_link_resolves_and_the_chapters_follow_the_readme(server, site, capsys):
    "The crawl finds no broken link, and the pages' 'next' links walk the chapters part by part, as the README lists them."
    nexts, n_refs, broken = crawl(server)
    assert not broken, f'{len(broken)} broken internal references:\n' + '\n'.join(broken[:20])
    chapters = sorted(p.stem + '.html' for p in (ROOT / 'nbs').glob('[0-9][0-9]_*.ipynb'))
    missing = [c for c in chapters if c not in nexts]
    assert not missing, f'chapters the crawl did not reach from the home page: {missing}'
    walkthrough = (ROOT / 'README.md').read_text().split('## The walkthrough', 1)[1].split('\n## ', 1)[0]
    order = [f'{nb}.html' for nb in re.findall(r'\]\(nbs/(\d\d_\w+)\.ipynb\)', walkthrough)]  # part by part
    assert sorted(order) == chapters, 'the README walkthrough must list every chapter once'
    chain = ['index.html', *order]
    wrong = [(a, nexts[a], b) for a, b in zip(chain, chain[1:]) if nexts[a] != b]
    assert not wrong, f'"next" links out of the README order (page, its next, expected): {wrong}'
    apis = [p for p in nexts if p.startswith('_api/farmer.')]
    assert len(apis) >= 15, f'{len(apis)} API pages reached'
    with capsys.disabled():
        print(
            f'\nsite built in {BUILD["seconds"]:.0f} s; crawled {len(nexts)} pages ({len(chapters)} chapters, {len(apis)} API pages), {n_refs} internal URLs, none broken'
        )


# What a page reports once its MathJax has typeset everything: images, equations, raw TeX left in the prose
PAGE_STATE = """async () => {
  if (window.MathJax && MathJax.Hub) await new Promise(done => MathJax.Hub.Queue(done));
  const prose = document.querySelector('article') || document.body;
  const copy = prose.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, .MathJax_Preview').forEach(e => e.remove());
  const text = copy.innerText || copy.textContent;
  return {
    images: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
    math_marked: document.querySelectorAll('.math.notranslate').length,
    math_sources: document.querySelectorAll('script[type^="math/tex"]').length,
    math_errors: document.querySelectorAll('.MathJax_Error, merror').length,
    raw_tex: (text.match(/\\$\\$|\\\\\\(|\\\\\\[|\\\\frac|\\\\mathbf/g) || []).length,
    title: document.title,
  };
}"""


@pytest.mark.slow
def test_home_af_and_split_chapters_render_in_chromium(server, tmp_path, capsys):
    from playwright.sync_api import sync_playwright

    exe, shots, report = chromium(), [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={'width': 1280, 'height': 900})
        problems = []
        page.on(
            'console',
            lambda m: (
                problems.append(f'console {m.type}: {m.text} ({m.location.get("url")})') if m.type == 'error' else None
            ),
        )
        page.on('pageerror', lambda e: problems.append(f'page error: {e}'))
        page.on('requestfailed', lambda r: problems.append(f'request failed: {r.url} ({r.failure})'))
        page.on(
            'request',
            lambda r: (
                problems.append(f'external request: {r.url}')
                if not r.url.startswith((server, 'data:', 'blob:'))
                else None
            ),
        )
        page.on('response', lambda r: problems.append(f'HTTP {r.status}: {r.url}') if r.status >= 400 else None)
        for name, path in PAGES.items():
            problems.clear()
            page.goto(server + path, wait_until='load')
            state = page.evaluate(PAGE_STATE)
            assert not problems, f'{path}: ' + '; '.join(problems)
            bad = [src for src, ok in state['images'] if not ok]
            assert state['images'], f'{path}: no image on the page'
            assert not bad, f'{path}: images not loaded: {bad}'
            assert state['raw_tex'] == 0, f'{path}: {state["raw_tex"]} pieces of raw TeX left in the text'
            assert state['math_errors'] == 0, f'{path}: {state["math_errors"]} equations MathJax could not typeset'
            assert state['math_sources'] == state['math_marked'], f'{path}: equations left untypeset: {state}'
            shot = tmp_path / f'{name}.png'
            page.screenshot(path=str(shot), full_page=True)
            shots.append(shot)
            report.append(
                f'{path}: "{state["title"]}", {len(state["images"])} images loaded, {state["math_sources"]} equations rendered'
            )
        problems.clear()  # search runs in the page, from the index the build wrote (no server-side search)
        page.goto(server + 'search.html?q=resampling', wait_until='load')
        page.wait_for_selector('#search-results ul.search li', timeout=30_000)
        hits = page.eval_on_selector_all('#search-results ul.search li a', 'as => as.map(a => a.getAttribute("href"))')
        assert not problems, 'search.html: ' + '; '.join(problems)
        assert any('13_sampling' in h for h in hits), f'searching "resampling" misses the sampling chapter: {hits}'
        report.append(f'search.html?q=resampling: {len(hits)} results, the sampling chapter among them')
        page.goto(server + 'index.html', wait_until='load')  # the sidebar shows the walkthrough's four parts
        captions = page.eval_on_selector_all('.sidebar-tree p.caption', 'ps => ps.map(p => p.textContent.trim())')
        assert [c.split(' ·')[0] for c in captions[:4]] == ['Part I', 'Part II', 'Part III', 'Part IV'], captions
        report.append(f'sidebar captions: {captions}')
        browser.close()
    af_math = int(re.search(r'04_af.html: .*?, (\d+) equations', '\n'.join(report))[1])
    assert af_math >= 3, f'the AF chapter shows eqs. 8-10; MathJax typeset {af_math} equations'
    with capsys.disabled():
        print('\n' + '\n'.join(report) + '\nscreenshots: ' + ' '.join(map(str, shots)))
