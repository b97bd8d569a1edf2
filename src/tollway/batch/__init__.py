"""Deferred work at batch prices: the OpenAI Batch API (and Anthropic's Message Batches) on tollway.

A batch is a JSONL file of requests with a completion window. Each line runs either through a provider's
own batch API (native mode: the provider's batch rate) or through tollway's normal routing, placed in the
cheapest hours the catalog knows inside the window (scheduled mode). See docs/batch.md.
"""
