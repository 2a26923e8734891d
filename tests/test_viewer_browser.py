"""The demo's HTML viewer in a real headless Chromium: it loads offline without console errors,
draws every node, steps through backward in the order the engine ran it, and its panels,
clicks and search work.

Skipped (with the reason) without selenium, Chromium, chromedriver or Graphviz's `dot`.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tinygrad_bn import Tensor, nn, viz
from tinygrad_bn import functional as F
from tinygrad_bn.commands import demo
from tinygrad_bn.viz import browser
from tinygrad_bn.viz.model import build

if (reason := browser.missing()) is not None or not viz.dot_available():
    pytest.skip(reason or "Graphviz `dot` is not installed", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402 - only once selenium is known to exist
from selenium.webdriver.common.keys import Keys  # noqa: E402

SEED = 0


def fake_digits():
    """Stand-ins for the demo's MNIST digits: the page's structure does not depend on them."""
    rng = np.random.default_rng(1)
    return rng.random((16, 784)).astype(np.float32), rng.integers(0, 10, 16)


def demo_roots(x, y):
    """The demo's two graphs, built as demo.write_graph builds them, with the order and the
    gradients the engine's backward really ran recorded per op (by wrapping each backward)."""
    roots = []
    for impl in ("composed", "fused"):
        rng = np.random.default_rng(SEED)
        model = nn.Sequential(nn.Linear(784, 8, dtype=np.float64, rng=rng),
                              nn.BatchNorm1d(8, impl=impl, dtype=np.float64), nn.ReLU(),
                              nn.Linear(8, 10, dtype=np.float64, rng=rng))
        loss = F.cross_entropy(model(Tensor(x[:16].astype(np.float64))), y[:16])
        roots.append((loss, model))
    return roots


def record_backward(loss):
    """Run loss.backward(retain_graph=True), returning [(ctx, norm of the gradient it got)] in
    the order the engine called the backward rules."""
    calls, classes, stack = [], set(), [loss.grad_fn]
    seen = set()
    while stack:
        ctx = stack.pop()
        if ctx is None or ctx in seen:
            continue
        seen.add(ctx)
        classes.add(ctx.fn)
        stack.extend(p.grad_fn for p in ctx.parents)
    with pytest.MonkeyPatch.context() as m:
        for fn in classes:
            # An ordinary backward runs an op's array rule when it has one, else its Tensor rule.
            for rule in ("backward", "fast_backward"):
                original = getattr(fn, rule)
                if original is None:
                    continue

                def wrapped(ctx, g, _original=original):
                    calls.append((ctx, float(np.linalg.norm(np.asarray(g)))))
                    return _original(ctx, g)

                m.setattr(fn, rule, staticmethod(wrapped))
        loss.backward(retain_graph=True)
    return calls


def independent_node_count(root):
    """Distinct tensors in the graph (op outputs and leaves), minus the unnamed scalar
    constants the drawing writes into their op's label: walked here without viz."""
    ops, leaves, stack = set(), {}, [root.grad_fn]
    while stack:
        ctx = stack.pop()
        if ctx in ops:
            continue
        ops.add(ctx)
        for p in ctx.parents:
            if p.grad_fn is not None:
                stack.append(p.grad_fn)
            else:
                leaves[id(p)] = p
    inline = sum(1 for t in leaves.values()
                 if t.numel() == 1 and t.name is None and not t.requires_grad
                 and not isinstance(t, nn.Parameter))
    return len(ops) + len(leaves) - inline


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The page demo.write_graph writes, and the same graphs rebuilt here with their
    recorded backward."""
    x, y = fake_digits()
    out = tmp_path_factory.mktemp("demo")
    demo.write_graph(x, y, out, seed=SEED)
    path = out / f"{demo.GRAPH_NAME}.html"
    roots = demo_roots(x, y)
    recorded = [record_backward(loss) for loss, _ in roots]
    mine = viz.to_html_comparison(roots[0][0], roots[1][0], labels=("composed", "fused"),
                                  params=(roots[0][1], roots[1][1]))
    return {"path": path, "roots": roots, "recorded": recorded, "rebuilt": mine}


@pytest.fixture(scope="module")
def driver():
    with browser.headless_chromium(1400, 900) as d:
        yield d


@pytest.fixture
def opened(page, driver):
    driver.get(page["path"].resolve().as_uri())
    assert driver.find_element(By.ID, "tgbn").get_attribute("data-ready") == "1"
    return driver


def severe_logs(driver):
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_the_page_is_self_contained_and_the_demo_writes_exactly_this_graph(page):
    text = page["path"].read_text()
    # nothing is fetched at view time: no external scripts, styles, fonts or images
    assert not re.search(r'(?:src|href)="(?!data:|#)', text)
    assert "http://" not in text.replace("http://www.w3.org/", "")
    assert "https://" not in text
    assert text == page["rebuilt"].html  # the same graphs give the same page, byte for byte


def test_page_loads_offline_without_console_errors_and_draws_every_node(page, opened):
    assert severe_logs(opened) == []
    titles = opened.execute_script(
        "return [...document.querySelectorAll('.tg-svg[data-view=backward] g.node > title')]"
        ".map(t => t.textContent)")
    drawn = [t for t in titles if not t.startswith("legend_")]
    expected = sum(independent_node_count(loss) for loss, _ in page["roots"])
    assert len(drawn) == len(set(drawn)) == expected
    forward = opened.execute_script(
        "return document.querySelectorAll('.tg-svg[data-view=forward] g.node').length")
    assert forward == len(titles)


def test_stepping_visits_every_op_in_the_order_backward_ran_and_updates_the_panel(page, opened):
    steps_total = int(opened.find_element(By.CSS_SELECTOR, ".tg-slider").get_attribute("max"))
    step = opened.find_element(By.CSS_SELECTOR, '[data-act="step"]')
    root = opened.find_element(By.ID, "tgbn")
    models = [build(loss, model) for loss, model in page["roots"]]
    ids = [{n.ctx: prefix + n.id for n in m.ops} for m, prefix in zip(models, ("a_", "b_"))]
    expected = [[ids[s][ctx] for ctx, _ in page["recorded"][s]] for s in (0, 1)]
    norms = [{ids[s][ctx]: norm for ctx, norm in page["recorded"][s]} for s in (0, 1)]
    visited: list[list[str]] = [[], []]
    for tick in range(1, steps_total + 1):
        step.click()
        assert root.get_attribute("data-tick") == str(tick)
        current = root.get_attribute("data-current").split()
        panel = opened.find_element(By.CSS_SELECTOR, ".tg-info").text
        assert f"step {tick} of {steps_total}" in panel
        composed_panel = opened.find_element(By.CSS_SELECTOR, ".tg-info .tg-side").text
        for node_id in current:
            side = 0 if node_id.startswith("a_") else 1
            if not visited[side] or visited[side][-1] != node_id:
                visited[side].append(node_id)
        # the composed side's op and the norm of the gradient it received, as recorded
        first = current[0]
        assert first.startswith("a_")
        assert _close_number_in(composed_panel, norms[0][first])
        highlighted = opened.execute_script(
            "return [...document.querySelectorAll('.tg-svg[data-view=backward] .tg-current > title')]"
            ".map(t => t.textContent)")
        assert set(highlighted) == set(current)
    assert visited == expected
    assert len(expected[0]) == len(models[0].ops) and len(expected[1]) == len(models[1].ops)
    step.click()  # past the end: stays at the last step
    assert root.get_attribute("data-tick") == str(steps_total)
    opened.find_element(By.CSS_SELECTOR, '[data-act="back"]').click()
    assert root.get_attribute("data-tick") == str(steps_total - 1)
    opened.find_element(By.CSS_SELECTOR, "body").send_keys(Keys.HOME)
    assert root.get_attribute("data-tick") == "0"
    arriving = opened.execute_script("return document.querySelectorAll('.tg-arriving').length")
    assert arriving == 0
    assert severe_logs(opened) == []


def _close_number_in(text, value):
    """True when `text` shows a number within 0.1% of `value` (the panel rounds to 4 digits)."""
    for token in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", text):
        number = float(token)
        if value == 0 and number == 0 or value and abs(number - value) <= 1e-3 * abs(value):
            return True
    return False


def test_clicking_a_node_opens_its_panel(page, opened):
    (xhat,) = [n for n in build(*page["roots"][0]).nodes if n.name == "xhat"]
    element = opened.execute_script(
        "return [...document.querySelectorAll('.tg-svg[data-view=backward] g.node')]"
        ".find(g => g.querySelector('title').textContent === arguments[0])", "a_" + xhat.id)
    opened.execute_script("arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}))",
                          element)
    panel = opened.find_element(By.CSS_SELECTOR, ".tg-info").text
    assert "mul → xhat" in panel and "BatchNorm1d (composed)" in panel
    assert "(16, 8) float64" in panel and "SAVED FOR BACKWARD" in panel.upper()
    assert _close_number_in(panel, float(np.linalg.norm(xhat.ctx.trace.received)))
    assert opened.find_element(By.ID, "tgbn").get_attribute("data-selected") == "a_" + xhat.id


def test_search_finds_xhat_and_folding_a_box_covers_it(opened):
    box = opened.find_element(By.CSS_SELECTOR, ".tg-search")
    box.send_keys("xhat")
    results = opened.find_element(By.CSS_SELECTOR, ".tg-results")
    assert "1 match" in results.text and "xhat" in results.text
    assert opened.execute_script("return document.querySelectorAll("
                                 "'.tg-svg[data-view=backward] .tg-match').length") == 1
    results.find_element(By.CSS_SELECTOR, "button").click()
    assert "mul → xhat" in opened.find_element(By.CSS_SELECTOR, ".tg-info").text
    # fold the composed BatchNorm's box by its title, then unfold it
    fold = ("const g = [...document.querySelectorAll('.tg-svg[data-view=backward] g.cluster')]"
            ".find(c => c.querySelector('text') && c.querySelector('text').textContent"
            ".includes('BatchNorm1d (composed)'));"
            "g.querySelector('text').dispatchEvent(new MouseEvent('click', {bubbles: true}));"
            "return g.classList.contains('tg-folded') && g.parentNode.lastElementChild === g;")
    assert opened.execute_script(fold) is True
    assert opened.execute_script(
        "return document.querySelector('.tg-folded .tg-fold-label').textContent").endswith(
            "ops folded · click to unfold")
    unfold = ("const g = document.querySelector('.tg-svg[data-view=backward] .tg-folded');"
              "g.dispatchEvent(new MouseEvent('click', {bubbles: true}));"
              "return document.querySelectorAll('.tg-folded, .tg-fold-label').length;")
    assert opened.execute_script(unfold) == 0  # both views unfold together
    assert severe_logs(opened) == []


def test_forward_and_backward_views_switch(opened):
    root = opened.find_element(By.ID, "tgbn")
    assert root.get_attribute("data-view") == "backward"
    opened.find_element(By.CSS_SELECTOR, 'button[data-view="forward"]').click()
    assert root.get_attribute("data-view") == "forward"
    shown = opened.execute_script(
        "return [...document.querySelectorAll('.tg-svg')].map(d => [d.dataset.view, "
        "getComputedStyle(d).visibility])")
    assert sorted(shown) == [["backward", "hidden"], ["forward", "visible"]]
    opened.find_element(By.CSS_SELECTOR, '[data-act="step"]').click()
    # in the forward view, the edge the root's gradient would arrive on does not exist: the
    # root is highlighted and nothing breaks
    assert opened.execute_script(
        "return document.querySelectorAll('.tg-svg[data-view=forward] .tg-current').length") == 2
    assert severe_logs(opened) == []


def test_screenshot_of_the_viewer_mid_backward(page, tmp_path):
    png = browser.screenshot(page["path"], tmp_path / "viewer.png", steps=20, zoom_ins=4)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
