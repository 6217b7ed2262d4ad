"""Interactive figures that work both in a live kernel and on the static website.

An :class:`Explorer` wraps one plotting function and a finite grid of parameter values.
Displayed in a notebook, it offers two views of the same frames:

* ``application/vnd.jupyter.widget-view+json``: ipywidgets selection sliders over the grid and an
  image widget, for JupyterLab and other front ends with a live kernel;
* ``text/html``: every frame of the grid rendered in advance as a base64 PNG, with one
  ``<input type="range">`` per parameter and a short inline script that swaps the shown image.
  It needs no kernel, no network and no external script.

A front end shows the type it ranks highest. JupyterLab ranks the widget view first.
The book's ``_config.yml`` ranks ``text/html`` above the widget view for Sphinx's html builder
through myst-nb's ``nb_mime_priority_overrides``, so the website shows the static version.

The static frames are computed every time an explorer is displayed, not only during the book
build. Jupyter Book's execution cache does not depend on environment variables, so a build-only
switch could put a cached notebook without static frames on the site. Computing them always also
keeps a saved notebook viewable without a kernel. The cost is bounded by ``max_frames``
(30 by default). The widget reuses the same frames, so its sliders respond at once.

Example::

    def draw(figure, t, width):
        axis = figure.subplots()
        axis.plot(grid, torch.exp(-(grid - t) ** 2 / width))

    Explorer(draw, {"t": [0.0, 0.5, 1.0], "width": [0.1, 1.0]})
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from numbers import Real
from typing import Any

from matplotlib.figure import Figure

__all__ = ["Explorer", "DEFAULT_MAX_FRAMES"]

#: Default of ``max_frames``, the largest number of frames one explorer may render.
DEFAULT_MAX_FRAMES = 30

_WIDGET_VIEW_MIMETYPE = "application/vnd.jupyter.widget-view+json"

# Runs once per explorer on the static page. The frames, the grid sizes and the value labels
# come from the JSON block next to it. The frame index is row-major over the parameters.
_CONTROL_SCRIPT = """
(function () {
  "use strict";
  const root = document.getElementById("__ROOT_ID__");
  const data = JSON.parse(root.querySelector("script.interp-explorer-data").textContent);
  const image = root.querySelector("img.interp-explorer-frame");
  const sliders = Array.from(root.querySelectorAll("input.interp-explorer-slider"));
  function update() {
    let index = 0;
    const currentValues = [];
    sliders.forEach(function (slider, k) {
      const position = Number(slider.value);
      index = index * data.sizes[k] + position;
      slider.parentElement.querySelector("output").textContent = data.labels[k][position];
      currentValues.push(data.names[k] + " = " + data.labels[k][position]);
    });
    image.src = "data:image/png;base64," + data.frames[index];
    image.alt = data.title + ": " + currentValues.join(", ");
  }
  sliders.forEach(function (slider) {
    slider.addEventListener("input", update);
  });
})();
"""

_STYLE = (
    ".interp-explorer-controls { display: flex; flex-wrap: wrap; gap: 0.25rem 1.5rem; margin-bottom: 0.5rem; }"
    " .interp-explorer-controls label { display: flex; align-items: center; gap: 0.5rem; }"
    " .interp-explorer-controls input { width: 14rem; }"
    " .interp-explorer-controls output { min-width: 3em; font-variant-numeric: tabular-nums; }"
    " img.interp-explorer-frame { max-width: 100%; height: auto; }"
)


def _format_value(value: Any) -> str:
    """Return the label a slider shows for one grid value."""
    if isinstance(value, Real) and not isinstance(value, bool):
        return f"{value:g}"
    return str(value)


def _validate_grid(parameters: Any) -> dict[str, list[Any]]:
    """Check the parameter grid and return it as a dict of lists, in the caller's order."""
    if not isinstance(parameters, Mapping):
        raise TypeError(
            f"parameters must be a mapping from parameter name to a list of values, got {type(parameters).__name__}"
        )
    if not parameters:
        raise ValueError("parameters is empty; give at least one parameter, e.g. {'t': [0.1, 0.5, 0.9]}")

    grid = {}
    for name, values in parameters.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"parameter names must be valid Python identifiers, got {name!r}")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
            raise TypeError(
                f"parameter {name!r} needs a list of values, got {type(values).__name__} {values!r}"
            )
        if len(values) == 0:
            raise ValueError(f"parameter {name!r} has an empty list of values; give at least one value")

        labels = [_format_value(value) for value in values]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise ValueError(
                f"parameter {name!r} has values that show the same label {duplicates}; "
                "give distinct values, because a slider cannot tell them apart"
            )
        grid[name] = list(values)
    return grid


class Explorer:
    """Interactive figure over a finite grid of parameter values, with a kernel-free HTML version.

    Args:
        plot: Function called as ``plot(figure, **values)`` with a new, empty
            :class:`matplotlib.figure.Figure` in constrained layout and one value per parameter.
            It draws one frame on that figure, for example through ``figure.subplots()``, and
            must not call ``plt.show()``. Its return value is ignored.
        parameters: Mapping from each parameter name, a keyword argument of ``plot``, to the
            list of values its slider offers. The frames are all combinations of these values.
        initial: Optional mapping from parameter name to the value shown first. Each value must
            be in that parameter's list. A parameter not named starts at its first value.
        figsize: Figure width and height in inches.
        dpi: Resolution of the rendered frames in dots per inch.
        max_frames: Largest allowed number of combinations. Every combination is rendered as a
            PNG that the page embeds, so this bounds the build time and the page size.
        title: Text for the image's ``alt`` attribute, followed by the current values.

    Raises:
        TypeError: If ``plot`` is not callable, or ``parameters`` is not a mapping of lists.
        ValueError: If the grid is empty, has an empty or ambiguous list of values, has more
            than ``max_frames`` combinations, or ``initial`` names an unknown parameter or value.
    """

    def __init__(
        self,
        plot: Callable[..., Any],
        parameters: Mapping[str, Sequence[Any]],
        *,
        initial: Mapping[str, Any] | None = None,
        figsize: tuple[float, float] = (5.0, 4.0),
        dpi: float = 72,
        max_frames: int = DEFAULT_MAX_FRAMES,
        title: str = "Explorer frame",
    ) -> None:
        if not callable(plot):
            raise TypeError(f"plot must be callable as plot(figure, **values), got {type(plot).__name__} {plot!r}")
        self.plot = plot
        self.parameters = _validate_grid(parameters)

        if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
            raise ValueError(f"max_frames must be a positive int, got {max_frames!r}")
        self.frame_count = math.prod(len(values) for values in self.parameters.values())
        if self.frame_count > max_frames:
            sizes = " x ".join(f"{len(values)} {name}" for name, values in self.parameters.items())
            raise ValueError(
                f"the grid has {self.frame_count} frames ({sizes}), more than max_frames = {max_frames}; "
                "give fewer values, or raise max_frames if the page may grow by that many images"
            )

        self.initial = self._validate_initial(initial or {})
        self.figsize = figsize
        self.dpi = dpi
        self.title = title
        self._frames: dict[tuple[int, ...], bytes] = {}
        self._widget = None

    def _validate_initial(self, initial: Mapping[str, Any]) -> tuple[int, ...]:
        """Return the grid position of the first frame shown."""
        unknown = sorted(set(initial) - set(self.parameters))
        if unknown:
            raise ValueError(f"initial names unknown parameters {unknown}; the parameters are {list(self.parameters)}")

        position = []
        for name, values in self.parameters.items():
            if name not in initial:
                position.append(0)
                continue
            matches = [index for index, value in enumerate(values) if value == initial[name]]
            if not matches:
                raise ValueError(f"initial value {initial[name]!r} of {name!r} is not in its list {values}")
            position.append(matches[0])
        return tuple(position)

    def positions(self) -> list[tuple[int, ...]]:
        """Return every grid position, as one index per parameter, in row-major order."""
        return list(itertools.product(*(range(len(values)) for values in self.parameters.values())))

    def values_at(self, position: Sequence[int]) -> dict[str, Any]:
        """Return the parameter values at one grid position."""
        return {name: values[index] for (name, values), index in zip(self.parameters.items(), position)}

    def frame(self, position: Sequence[int]) -> bytes:
        """Render the frame at one grid position as PNG bytes, or return it from the cache."""
        position = tuple(position)
        if position not in self._frames:
            values = self.values_at(position)
            # The constrained layout trims the margins without changing the frame size, so the
            # image does not jump when the slider moves.
            figure = Figure(figsize=self.figsize, dpi=self.dpi, facecolor="white", layout="constrained")
            try:
                self.plot(figure, **values)
            except Exception as error:
                if hasattr(error, "add_note"):  # Python 3.11 and newer
                    error.add_note(f"raised by the explorer's plot function at {values}")
                raise
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=self.dpi)
            self._frames[position] = buffer.getvalue()
        return self._frames[position]

    def to_html(self) -> str:
        """Render every frame and return the self-contained HTML control that shows them.

        The result contains one ``<img>``, one range slider per parameter, the frames as base64
        PNG in a JSON block, and an inline script. It loads nothing else.
        """
        root_id = f"interp-explorer-{uuid.uuid4().hex}"
        names = list(self.parameters)
        labels = [[_format_value(value) for value in values] for values in self.parameters.values()]
        frames = [base64.b64encode(self.frame(position)).decode("ascii") for position in self.positions()]

        data = {
            "names": names,
            "sizes": [len(values) for values in self.parameters.values()],
            "labels": labels,
            "frames": frames,
            "title": self.title,
        }
        # "<" is escaped so that no label can close the <script> element early.
        data_json = json.dumps(data).replace("<", "\\u003c")

        controls = []
        for k, name in enumerate(names):
            index = self.initial[k]
            controls.append(
                f'<label>{html.escape(name)} <input type="range" class="interp-explorer-slider" '
                f'min="0" max="{len(labels[k]) - 1}" step="1" value="{index}" '
                f'aria-label="{html.escape(name)}"> <output>{html.escape(labels[k][index])}</output></label>'
            )

        initial_values = ", ".join(f"{name} = {labels[k][self.initial[k]]}" for k, name in enumerate(names))
        first_frame = base64.b64encode(self.frame(self.initial)).decode("ascii")
        return "\n".join(
            [
                f'<div class="interp-explorer" id="{root_id}">',
                f"<style>{_STYLE}</style>",
                f'<div class="interp-explorer-controls">{"".join(controls)}</div>',
                f'<img class="interp-explorer-frame" src="data:image/png;base64,{first_frame}" '
                f'alt="{html.escape(self.title)}: {html.escape(initial_values)}">',
                f'<script type="application/json" class="interp-explorer-data">{data_json}</script>',
                f"<script>{_CONTROL_SCRIPT.replace('__ROOT_ID__', root_id)}</script>",
                "</div>",
            ]
        )

    def widget(self):
        """Return the ipywidgets version: one selection slider per parameter above an image.

        The widget is created once and reused. It needs a live kernel to respond.
        """
        if self._widget is not None:
            return self._widget

        import ipywidgets as widgets

        image = widgets.Image(value=self.frame(self.initial), format="png")
        sliders = []
        for k, (name, values) in enumerate(self.parameters.items()):
            options = [(_format_value(value), index) for index, value in enumerate(values)]
            slider = widgets.SelectionSlider(options=options, value=self.initial[k], description=name)
            sliders.append(slider)

        def show_current_frame(change=None):
            image.value = self.frame([slider.value for slider in sliders])

        for slider in sliders:
            slider.observe(show_current_frame, names="value")
        self._widget = widgets.VBox([*sliders, image])
        return self._widget

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, Any]:
        """Return the widget view, the static HTML and a plain-text summary, for IPython's display."""

        def is_requested(mimetype: str) -> bool:
            return (include is None or mimetype in include) and (exclude is None or mimetype not in exclude)

        bundle = {"text/plain": repr(self)}
        if is_requested("text/html"):
            bundle["text/html"] = self.to_html()
        if is_requested(_WIDGET_VIEW_MIMETYPE):
            bundle[_WIDGET_VIEW_MIMETYPE] = self.widget()._repr_mimebundle_()[_WIDGET_VIEW_MIMETYPE]
        return bundle

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}: {len(values)} values" for name, values in self.parameters.items())
        return f"Explorer({getattr(self.plot, '__name__', 'plot')}, {sizes}; {self.frame_count} frames)"
