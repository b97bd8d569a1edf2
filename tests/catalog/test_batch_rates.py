"""The batch tiers a native batch upstream is priced at: which models have one, its rate and its source."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from tollway.catalog import Catalog

AT = datetime(2026, 12, 7, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.mark.parametrize("model, region, batch_in, batch_out", [
    ("qwen-plus", "ap-southeast-1", "0.200", "0.600"),
    ("qwen-max", "ap-southeast-1", "0.800", "3.200"),
])
def test_dashscope_batch_models_are_half_price_from_the_batch_page(catalog: Catalog, model: str, region: str,
                                                                   batch_in: str, batch_out: str) -> None:
    batch = catalog.price("qwen", model, AT, prompt_tokens=1000, tier="batch", region=region)
    assert (batch.input, batch.output) == (Decimal(batch_in), Decimal(batch_out))
    # the factor is official; the price is only as sure as the (third-party) standard rate it halves
    assert "batch-interfaces-compatible-with-openai" in batch.source and batch.verified is False


def test_a_qwen_model_singapore_does_not_batch_has_no_batch_tier(catalog: Catalog) -> None:
    assert catalog.price("qwen", "qwen3.8-max", AT, tier="batch", region="ap-southeast-1") is None


def test_openai_batch_half_is_sourced_from_openais_own_faq(catalog: Catalog) -> None:
    batch = catalog.price("openai", "gpt-5.4", AT, prompt_tokens=1000, tier="batch")
    assert (batch.input, batch.output) == (Decimal("1.250"), Decimal("7.500"))
    assert "https://help.openai.com/en/articles/9197833-batch-api-faq" in batch.source
