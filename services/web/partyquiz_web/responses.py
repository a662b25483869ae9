"""The JSON response class for bodies built by hand (errors, exports), rendered with orjson.

Routes with a declared response model are serialised by pydantic straight to bytes and do
not need it.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class OrjsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
