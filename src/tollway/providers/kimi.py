"""Kimi (Moonshot): usage inside `choices[0].usage` of the finish chunk; a 403 means the quota is
exhausted (exceeded_current_quota_error), not that our key is wrong."""

from tollway.providers.dialect import ErrorMeaning
from tollway.providers.failure import FailureKind
from tollway.providers.openai_compatible import compatible

DIALECT = compatible("kimi", reasoning_field="reasoning_content", default_base_url="https://api.moonshot.ai/v1",
                     errors=ErrorMeaning(statuses={403: FailureKind.OUT_OF_FUNDS}))
