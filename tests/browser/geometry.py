"""Geometry on real screens, for browser tests: the phone and TV sizes the pages must fit, what
is outside the viewport, text rendered too small, touch targets too small, and a second display
of the host's big screen.

"Legible at 5 m" is a number here: every text the room sees is at least 1/30 of the height of
the screen's 16:9 area (36 px at 1080p, 24 px at 720p, 72 px at 2160p). On a 70-inch TV that
is about 3 cm of font size, some 20 mm capital letters: comfortable reading at 5 m, where 20/20
vision needs 7 mm. A touch target is at least 44 x 44 CSS pixels (Apple's and WCAG's 2.5.5
size; Android asks 48 dp of spacing, which the gaps between targets give).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import BrowserContext, Page, ViewportSize

from tests.browser.flows import TOKEN_KEY, host_token

PHONES: dict[str, ViewportSize] = {
    "320x568": {"width": 320, "height": 568},
    "360x640": {"width": 360, "height": 640},
    "375x667": {"width": 375, "height": 667},
    "390x844": {"width": 390, "height": 844},
    "844x390": {"width": 844, "height": 390},
}
SCREENS: dict[str, ViewportSize] = {
    "1280x720": {"width": 1280, "height": 720},
    "1920x1080": {"width": 1920, "height": 1080},
    "3840x2160": {"width": 3840, "height": 2160},
}
LEGIBLE_SHARE = 1 / 30  # of the 16:9 area's height: the minimum rendered text size at 5 m
MIN_TOUCH = 44  # CSS pixels, each side


def phone_at(new_context: Callable[..., BrowserContext], size: ViewportSize) -> Page:
    context = new_context(phone=True)
    page = context.new_page()
    page.set_viewport_size(size)
    return page


def fits(page: Page, selectors: list[str]) -> list[str]:
    """What of ``selectors`` is not wholly inside the viewport, and whether the page scrolls."""
    problems: list[str] = page.evaluate(
        """(selectors) => {
            const out = [];
            const w = window.innerWidth, h = window.innerHeight;
            for (const sel of selectors) {
                const els = [...document.querySelectorAll(sel)];
                if (!els.length) out.push(`${sel}: missing`);
                for (const el of els) {
                    const r = el.getBoundingClientRect();
                    if (r.top < -0.5 || r.left < -0.5 || r.bottom > h + 0.5 || r.right > w + 0.5
                        || r.width < 1 || r.height < 1) {
                        out.push(`${sel} "${el.textContent.trim()}" at ${JSON.stringify(r)}`);
                    }
                }
            }
            const root = document.scrollingElement;
            if (root.scrollHeight > h + 1) out.push(`page scrolls: ${root.scrollHeight} > ${h}`);
            return out;
        }""",
        selectors,
    )
    return problems


def small_text(page: Page, root: str, minimum: float) -> list[str]:
    """Visible texts under ``root`` rendered smaller than ``minimum`` CSS pixels."""
    found: list[str] = page.evaluate(
        """([root, minimum]) => {
            const out = [];
            const walker = document.createTreeWalker(
                document.querySelector(root), NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                const text = node.textContent.trim();
                const el = node.parentElement;
                if (!text || el.closest(".visually-hidden")) continue;
                const r = el.getBoundingClientRect();
                const style = getComputedStyle(el);
                if (r.width < 1 || r.height < 1 || style.visibility === "hidden") continue;
                const size = parseFloat(style.fontSize);
                if (size < minimum) out.push(`${text.slice(0, 30)}: ${size}px`);
            }
            return out;
        }""",
        [root, minimum],
    )
    return found


def broken_words(page: Page, selector: str) -> list[str]:
    """Words under ``selector`` drawn across two lines (split mid-word to fit their box)."""
    found: list[str] = page.evaluate(
        """(selector) => {
            const out = [];
            for (const el of document.querySelectorAll(selector)) {
                const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
                for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                    for (const m of node.textContent.matchAll(/\\S+/g)) {
                        const range = document.createRange();
                        range.setStart(node, m.index);
                        range.setEnd(node, m.index + m[0].length);
                        const lines = new Set([...range.getClientRects()]
                            .filter((r) => r.width > 0).map((r) => Math.round(r.top)));
                        if (lines.size > 1) out.push(`${m[0]} on ${lines.size} lines`);
                    }
                }
            }
            return out;
        }""",
        selector,
    )
    return found


def small_targets(page: Page, selector: str) -> list[str]:
    """Enabled, visible targets under ``selector`` smaller than ``MIN_TOUCH`` on a side."""
    found: list[str] = page.evaluate(
        """([selector, minimum]) => {
            const out = [];
            for (const el of document.querySelectorAll(selector)) {
                const r = el.getBoundingClientRect();
                if (r.width < 1 || r.height < 1 || el.disabled) continue;
                if (r.width < minimum - 0.5 || r.height < minimum - 0.5) {
                    out.push(`${el.id || el.getAttribute("aria-label") || el.textContent.trim()}: `
                        + `${Math.round(r.width)}x${Math.round(r.height)}`);
                }
            }
            return out;
        }""",
        [selector, MIN_TOUCH],
    )
    return found


def screen_at(
    new_context: Callable[..., BrowserContext], host: Page, size: ViewportSize, **options: Any
) -> Page:
    """The big screen of ``host``'s current game on another display of ``size``."""
    page = new_context(**options).new_page()
    page.set_viewport_size(size)
    page.goto("/")
    page.evaluate(f"window.localStorage.setItem({TOKEN_KEY!r}, {host_token(host)!r})")
    page.goto(host.url)
    return page


def legible(page: Page) -> float:
    size = page.viewport_size
    assert size is not None
    return min(size["height"], size["width"] * 9 / 16) * LEGIBLE_SHARE - 0.5


def box(page: Page, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, selector
    return box
