"""Tests of interp.explorers: grid validation, frame rendering, the static HTML and the widget view."""

from __future__ import annotations

import base64
import io
import json
import re

import pytest
from PIL import Image

from interp.explorers import DEFAULT_MAX_FRAMES, Explorer

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def draw_line(figure, slope, offset=0.0):
    axis = figure.subplots()
    axis.plot([0, 1], [offset, offset + slope])
    axis.set(xlim=(0, 1), ylim=(-3, 3))


def read_static_data(page: str) -> dict:
    match = re.search(r'<script type="application/json" class="interp-explorer-data">(.*?)</script>', page, re.S)
    assert match is not None, "the static HTML has no interp-explorer-data block"
    return json.loads(match.group(1))


def test_explorer_rejects_non_callable_plot():
    with pytest.raises(TypeError, match="plot must be callable"):
        Explorer("not a function", {"slope": [1, 2]})


@pytest.mark.parametrize(
    ("parameters", "error", "message"),
    [
        ({}, ValueError, "parameters is empty"),
        ([("slope", [1, 2])], TypeError, "must be a mapping"),
        ({"slope": []}, ValueError, "'slope' has an empty list"),
        ({"slope": 0.5}, TypeError, "'slope' needs a list of values"),
        ({"slope": "abc"}, TypeError, "'slope' needs a list of values"),
        ({"not a name": [1, 2]}, ValueError, "valid Python identifiers"),
        ({"slope": [1.0, 1.0]}, ValueError, "same label"),
    ],
)
def test_explorer_rejects_invalid_grid(parameters, error, message):
    with pytest.raises(error, match=message):
        Explorer(draw_line, parameters)


def test_explorer_rejects_grid_over_max_frames():
    with pytest.raises(ValueError, match=f"36 frames .* more than max_frames = {DEFAULT_MAX_FRAMES}"):
        Explorer(draw_line, {"slope": list(range(6)), "offset": list(range(6))})


def test_explorer_accepts_grid_under_raised_max_frames():
    explorer = Explorer(draw_line, {"slope": list(range(6)), "offset": list(range(6))}, max_frames=36)
    assert explorer.frame_count == 36


@pytest.mark.parametrize(
    ("initial", "message"),
    [({"width": 1}, "unknown parameters"), ({"slope": 7}, "initial value 7 of 'slope' is not in its list")],
)
def test_explorer_rejects_invalid_initial(initial, message):
    with pytest.raises(ValueError, match=message):
        Explorer(draw_line, {"slope": [1, 2]}, initial=initial)


def test_explorer_positions_are_row_major():
    explorer = Explorer(draw_line, {"slope": [1, 2], "offset": [0.0, 0.5, 1.0]})
    assert explorer.positions() == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    assert explorer.values_at((1, 2)) == {"slope": 2, "offset": 1.0}


def test_explorer_frame_is_png_of_figure_size():
    explorer = Explorer(draw_line, {"slope": [1, 2]}, figsize=(4.0, 3.0), dpi=50)
    frame = explorer.frame((0,))
    assert frame.startswith(PNG_SIGNATURE)
    assert Image.open(io.BytesIO(frame)).size == (200, 150)


def test_explorer_frames_differ_between_values():
    explorer = Explorer(draw_line, {"slope": [-2, 2]})
    assert explorer.frame((0,)) != explorer.frame((1,))


def test_explorer_plot_error_names_values():
    def fail(figure, slope):
        raise RuntimeError("plot failed")

    explorer = Explorer(fail, {"slope": [1, 2]})
    with pytest.raises(RuntimeError, match="plot failed") as raised:
        explorer.frame((1,))
    notes = getattr(raised.value, "__notes__", [])
    if hasattr(raised.value, "add_note"):
        assert notes == ["raised by the explorer's plot function at {'slope': 2}"]


def test_static_html_holds_every_frame():
    explorer = Explorer(draw_line, {"slope": [1, 2, 3], "offset": [0.0, 1.0]})
    data = read_static_data(explorer.to_html())

    assert data["names"] == ["slope", "offset"]
    assert data["sizes"] == [3, 2]
    assert data["labels"] == [["1", "2", "3"], ["0", "1"]]
    assert len(data["frames"]) == 6
    for position, frame in zip(explorer.positions(), data["frames"]):
        assert base64.b64decode(frame) == explorer.frame(position), position


def test_static_html_has_one_range_slider_per_parameter():
    explorer = Explorer(draw_line, {"slope": [1, 2, 3], "offset": [0.0, 1.0]}, initial={"slope": 2})
    page = explorer.to_html()
    sliders = re.findall(r'<input type="range"[^>]*>', page)

    assert len(sliders) == 2, sliders
    assert 'max="2"' in sliders[0], sliders[0]
    assert 'value="1"' in sliders[0], sliders[0]
    assert 'max="1"' in sliders[1], sliders[1]
    assert 'value="0"' in sliders[1], sliders[1]


def test_static_html_loads_nothing_external():
    page = Explorer(draw_line, {"slope": [1, 2]}).to_html()
    assert re.search(r"<script[^>]*\bsrc=", page) is None
    assert re.search(r"<link\b", page) is None
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources, "the static explorer shows no image"
    for source in sources:
        assert source.startswith("data:image/png;base64,"), source[:60]


def test_static_html_escapes_labels():
    explorer = Explorer(draw_line, {"slope": [1, 2]}, title="</script><b>")
    page = explorer.to_html()
    assert "</script><b>" not in page
    assert read_static_data(page)["title"] == "</script><b>"


def test_static_html_ids_are_unique():
    explorer = Explorer(draw_line, {"slope": [1, 2]})
    first = re.search(r'id="(interp-explorer-[0-9a-f]+)"', explorer.to_html()).group(1)
    second = re.search(r'id="(interp-explorer-[0-9a-f]+)"', explorer.to_html()).group(1)
    assert first != second


def test_mimebundle_has_widget_view_and_static_html():
    explorer = Explorer(draw_line, {"slope": [1, 2]})
    bundle = explorer._repr_mimebundle_()

    assert set(bundle) == {"text/plain", "text/html", WIDGET_VIEW}
    assert bundle[WIDGET_VIEW]["model_id"] == explorer.widget().model_id
    assert 'class="interp-explorer"' in bundle["text/html"]


def test_mimebundle_respects_exclude():
    explorer = Explorer(draw_line, {"slope": [1, 2]})
    bundle = explorer._repr_mimebundle_(exclude=["text/html"])
    assert "text/html" not in bundle
    assert WIDGET_VIEW in bundle


def test_widget_sliders_cover_same_grid():
    explorer = Explorer(draw_line, {"slope": [1, 2, 3], "offset": [0.0, 1.0]}, initial={"offset": 1.0})
    widget = explorer.widget()
    sliders, image = widget.children[:-1], widget.children[-1]

    assert [slider.description for slider in sliders] == ["slope", "offset"]
    assert list(sliders[0].options) == [("1", 0), ("2", 1), ("3", 2)]
    assert list(sliders[1].options) == [("0", 0), ("1", 1)]
    assert image.value == explorer.frame((0, 1))


def test_widget_slider_changes_image():
    explorer = Explorer(draw_line, {"slope": [1, 2, 3]})
    widget = explorer.widget()
    slider, image = widget.children

    slider.value = 2
    assert image.value == explorer.frame((2,))
    assert image.value != explorer.frame((0,))
