"""Check the built documentation site in headless Chromium, opened from the file system.

Run by ``nox -s docs`` after ``mkdocs build``::

    python docs/check_site.py [SITE_DIR] [--screenshot PNG]

It opens ``SITE_DIR/index.html`` (default ``build/site``) through ``file://``, as the
README tells a reader to, and fails unless:

- every link of the navigation, clicked, lands on a real page of the site (not a
  directory listing, not a 404, not a browser error page);
- every link on every page it visits that stays in the site names a file that exists
  (a directory there would open as a listing);
- typing a query into the search box lists results, and the first one opens a page;
- no page asks for anything but local files (no CDN) and no script raises.

Chromium is Debian's (``apt-get install chromium``; ``$CHROMIUM`` names another
binary), driven with Playwright's Python package; ``playwright install`` is never
needed. Without Chromium the check fails under CI (``$CI`` set) and elsewhere is
skipped with a loud warning.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import yaml
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Request, Route, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
QUERY = "retry"  # the "Retries and rate limits" page must be among the results
EXPECTED_IN_RESULTS = "retries.html"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class SiteError(Exception):
    """The site fails the check; the message says where."""


def find_chromium() -> str | None:
    """Return the Chromium binary: ``$CHROMIUM``, else the first of the usual names on PATH."""
    if env := os.environ.get("CHROMIUM"):
        return shutil.which(env)
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    return None


def nav_page_count() -> int:
    """Count the pages that mkdocs.yml's nav lists (at any depth)."""

    def count(items: list[object]) -> int:
        total = 0
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            total += count(value) if isinstance(value, list) else 1
        return total

    with (ROOT / "mkdocs.yml").open(encoding="utf-8") as f:
        config = yaml.load(f, Loader=yaml.BaseLoader)  # plain YAML: no !!python tags
    return count(config["nav"])


def local_path(url: str) -> Path:
    """Return the file a ``file://`` URL names, without its query and fragment."""
    return Path(unquote(urlsplit(url).path))


def assert_real_page(page: Page, site: Path, came_from: str) -> None:
    """Fail unless the page shown is one of the site's pages, with its content."""
    where = f"{page.url} (from {came_from})"
    path = local_path(page.url)
    if not path.is_file() or site not in path.parents:
        raise SiteError(f"{where}: not a file of the site (a directory listing?)")
    if page.locator("#header", has_text="Index of").count():
        raise SiteError(f"{where}: a directory listing")
    if not page.locator("article.md-content__inner h1").count():
        raise SiteError(f"{where}: no article with a heading (an error page?)")
    heading = page.locator("article.md-content__inner h1").first.inner_text()
    if "404" in heading or "404" in page.title():
        raise SiteError(f"{where}: the 404 page")


def check_links_on_page(page: Page, site: Path) -> int:
    """Fail unless every link on the page that stays in the site names an existing file."""
    hrefs: list[str] = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    checked = 0
    for href in hrefs:
        url, _ = urldefrag(href)
        if not url.startswith("file://"):
            continue  # external links (https://...) are not followed offline
        path = local_path(url)
        if site not in path.parents:
            continue
        if not path.is_file():
            kind = "a directory" if path.is_dir() else "missing"
            raise SiteError(f"{page.url}: link {href!r} names {kind}, not a page")
        checked += 1
    return checked


def check_site(site: Path, chromium: str, screenshot: Path) -> None:
    """Run every check against the site in ``site``; raise SiteError on the first failure."""
    index = site / "index.html"
    if not index.is_file():
        raise SiteError(f"{index} does not exist: build the site first (nox -s docs)")
    index_url = index.as_uri()
    problems: list[str] = []

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)

        def only_local(route: Route, request: Request) -> None:
            if request.url.startswith(("file:", "data:", "blob:", "about:")):
                route.continue_()
            else:
                problems.append(f"the site asked for {request.url} (it must work offline)")
                route.abort()

        context.route("**/*", only_local)
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"script error on {page.url}: {exc}"))
        try:
            pages, links = check_pages(page, site, index_url, screenshot)
        except (SiteError, PlaywrightError) as exc:
            raise SiteError("\n".join([str(exc), *dict.fromkeys(problems)])) from exc
        finally:
            browser.close()

    if problems:
        raise SiteError("\n".join(dict.fromkeys(problems)))
    print(f"  {pages} nav pages, {links} in-site links on them, search: ok")


def check_pages(page: Page, site: Path, index_url: str, screenshot: Path) -> tuple[int, int]:
    """Follow the nav and search from the home page; return the pages and links checked."""
    # 1. Every nav link, clicked from the home page, lands on a real page.
    page.goto(index_url)
    assert_real_page(page, site, "the README's build/site/index.html")
    nav_links = page.locator("nav.md-nav--primary a.md-nav__link[href]")
    hrefs: list[str] = []
    for href in nav_links.evaluate_all("els => els.map(e => e.getAttribute('href'))"):
        if not href.startswith("#") and href not in hrefs:
            hrefs.append(href)
    expected = nav_page_count()
    if len(hrefs) < expected:
        raise SiteError(f"the nav shows {len(hrefs)} pages, mkdocs.yml lists {expected}")
    links_checked = 0
    for href in hrefs:
        page.goto(index_url)
        with page.expect_navigation():
            page.locator(f'nav.md-nav--primary a.md-nav__link[href="{href}"]').first.click()
        assert_real_page(page, site, f"nav link {href!r}")
        links_checked += check_links_on_page(page, site)
        print(f"  nav {href:<20} -> {local_path(page.url).relative_to(site)}: ok")

    # 2. Search: type a query into the box and see results; the first one opens.
    page.goto(index_url)
    box = page.locator("input.md-search__input")
    if not box.is_visible():  # the theme hides it when its search worker fails to start
        raise SiteError("the search box is hidden: search did not start")
    box.click()
    box.press_sequentially(QUERY, delay=50)
    results = page.locator("li.md-search-result__item")
    try:
        results.first.wait_for(state="visible")
    except PlaywrightError as exc:
        meta = page.locator(".md-search-result__meta").inner_text()
        raise SiteError(f"search for {QUERY!r} showed no results ({meta!r})") from exc
    page.screenshot(path=str(screenshot))
    meta = page.locator(".md-search-result__meta").inner_text()
    result_hrefs = results.locator("a[href]").evaluate_all("els => els.map(e => e.href)")
    if not any(EXPECTED_IN_RESULTS in href for href in result_hrefs):
        raise SiteError(f"search for {QUERY!r} did not find {EXPECTED_IN_RESULTS}: {meta!r}")
    print(f"  search {QUERY!r}: {meta} (screenshot: {screenshot})")
    with page.expect_navigation():
        results.first.locator("a[href]").first.click()
    assert_real_page(page, site, f"the first search result for {QUERY!r}")
    print(f"  first result -> {local_path(page.url).relative_to(site)}: ok")

    return len(hrefs), links_checked


def main() -> int:
    """Parse the arguments, find Chromium and run the checks; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", nargs="?", type=Path, default=ROOT / "build" / "site")
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=ROOT / "build" / "site-check-search.png",
        help="where to save a screenshot of the search results",
    )
    args = parser.parse_args()

    chromium = find_chromium()
    if chromium is None:
        message = (
            "Chromium was not found, so the built site was NOT checked in a browser.\n"
            "Install it (Debian: apt-get install -y --no-install-recommends chromium)"
            " or set $CHROMIUM."
        )
        if os.environ.get("CI"):
            print(f"check_site: FAILED: {message}", file=sys.stderr)
            return 1
        banner = "!" * 78
        print(f"{banner}\ncheck_site: SKIPPED: {message}\n{banner}", file=sys.stderr)
        return 0

    site = args.site.resolve()
    print(f"check_site: {site / 'index.html'} in {chromium}, from file://")
    try:
        check_site(site, chromium, args.screenshot.resolve())
    except (SiteError, PlaywrightError) as exc:
        print(f"check_site: FAILED: {exc}", file=sys.stderr)
        return 1
    print("check_site: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
