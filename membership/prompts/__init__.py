"""Paywall prompts: which reader sees which ask (docs/prompts.md; its modules in
docs/architecture.md)."""
