"""Path parameters that leave an area's fixed routes to them: /staff/api/goals/preview is
never the goal "preview", so a method it does not take is 405 with its Allow, not an
answer about a goal of that id."""

from __future__ import annotations

from werkzeug.routing import BaseConverter, PathConverter


def _other_than(words: tuple[str, ...], rest: str) -> str:
    return f"(?!(?:{'|'.join(words)})$){rest}"


class OtherThan(BaseConverter):
    """`<other_than("preview"):goal_id>`: one path segment, but not those words."""

    def __init__(self, url_map, *words: str) -> None:
        super().__init__(url_map)
        self.regex = _other_than(words, self.regex)


class PathOtherThan(PathConverter):
    """`<path_other_than("offline"):who>`: like `path`, but not those paths."""

    def __init__(self, url_map, *words: str) -> None:
        super().__init__(url_map)
        self.regex = _other_than(words, self.regex)


def add_converters(state) -> None:
    """A blueprint's record_once: the app learns the converters before the rules use them."""
    state.app.url_map.converters.update(other_than=OtherThan, path_other_than=PathOtherThan)
