"""How hard a request looks: low, medium or high, from signals that cost microseconds to read.

`strategy: tiers` sends easy requests to a cheap model and hard ones to a strong one; this is the fast
judge it uses by default. Each signal adds to a score in [0, 1]: a long prompt, code, mathematics,
multi-step wording (in English or Chinese), tools, a long conversation, and an explicit reasoning effort
from the client, which is the strongest hint of all. The signals found are kept so `tollway route
--explain` and the `x-tollway-route` header can say why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tollway.routing.features import RequestFeatures
from tollway.routing.settings import ComplexitySettings

_CODE = re.compile(r"```|^\s*(def |class |import |#include|public static|function\b|const \w+ =)|\bstack trace\b|"
                   r"Traceback \(most recent|\bregex\b|\bSQL\b|\brefactor", re.MULTILINE | re.IGNORECASE)
_MATH = re.compile(r"\\(frac|int|sum|sqrt|lim|begin\{)|\$\$|\b(prove|proof|derive|derivation|integral|theorem|lemma|"
                   r"equation|eigen\w*|probability|optimi[sz]e)\b|证明|推导|积分|方程|定理|概率", re.IGNORECASE)
_STEPS = re.compile(r"\b(step[- ]by[- ]step|compare|trade-?offs?|analy[sz]e|design|architect\w*|"
                    r"plan|evaluate|explain why|pros and cons|in detail)\b|逐步|一步一步|分析|比较|设计|规划|详细",
                    re.IGNORECASE)
_EFFORT_SCORE = {"minimal": 0.0, "low": 0.0, "medium": 0.25, "high": 0.6}


@dataclass(frozen=True, slots=True)
class Complexity:
    level: str                  # low | medium | high
    score: float                # 0..1 (the heuristic's; a model's grade maps to 0.0 / 0.5 / 1.0)
    signals: tuple[str, ...]    # what raised the score, e.g. ("code", "long prompt")
    source: str = "heuristic"   # heuristic | model:<deployment> | heuristic (model ...: why it was not used)

    def describe(self) -> str:
        why = ", ".join(self.signals) or "no signals"
        return f"{self.level} ({self.source}: {why})"


def heuristic_complexity(features: RequestFeatures, settings: ComplexitySettings) -> Complexity:
    score = 0.0
    signals: list[str] = []

    def add(points: float, signal: str) -> None:
        nonlocal score
        score += points
        signals.append(signal)

    if features.prompt_tokens > 8000:
        add(0.35, "very long prompt")
    elif features.prompt_tokens > 2000:
        add(0.2, "long prompt")
    text = features.text
    if _CODE.search(text):
        add(0.25, "code")
    if _MATH.search(text):
        add(0.3, "math")
    steps = len(_STEPS.findall(text))
    if steps:
        add(min(0.3, 0.15 * steps), "multi-step" if steps > 1 else "analysis wording")
    if features.tool_count:
        add(min(0.2, 0.1 * features.tool_count), f"{features.tool_count} tools")
    if features.message_count > 8:
        add(0.1, "long conversation")
    effort = features.reasoning_effort
    if effort is not None and _EFFORT_SCORE.get(effort, 0.0) > 0:
        add(_EFFORT_SCORE[effort], f"reasoning effort {effort}")
    score = min(1.0, score)
    return Complexity(level_for(score, settings), round(score, 3), tuple(signals))


def level_for(score: float, settings: ComplexitySettings) -> str:
    if score >= settings.high_at:
        return "high"
    if score >= settings.medium_at:
        return "medium"
    return "low"
