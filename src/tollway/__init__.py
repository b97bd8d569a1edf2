"""tollway: an LLM gateway that meters every token and dollar, and tells you what your traffic should cost."""

__version__ = "0.1.0"
