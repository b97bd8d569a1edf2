"""Config sections the ledger package owns beyond the ledger itself: stored Responses."""

from __future__ import annotations

from pydantic import Field

from tollway.core.config_base import Strict as _Strict


class ResponsesSettings(_Strict):
    retention_days: int = Field(30, ge=1, description="drop stored Responses (previous_response_id, GET "
                                "/v1/responses/{id}) older than this many days")
