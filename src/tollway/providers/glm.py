"""GLM (Zhipu / Z.ai): a business code string in `error.code` says what went wrong, whatever the HTTP
status (an empty balance comes as 429 with code 1113), so the codes are read before the status."""

from tollway.providers.dialect import ErrorMeaning
from tollway.providers.failure import FailureKind
from tollway.providers.openai_compatible import compatible

_CODES = {
    **dict.fromkeys(("1113", "1304", "1308", "1309", "1310"), FailureKind.OUT_OF_FUNDS),
    **dict.fromkeys(("1302", "1303", "1305", "1312", "1313"), FailureKind.RATE_LIMITED),
    "1261": FailureKind.CONTEXT_LENGTH,
    "1301": FailureKind.CONTENT_FILTER,
}

DIALECT = compatible("glm", reasoning_field="reasoning_content", errors=ErrorMeaning(codes=_CODES))
