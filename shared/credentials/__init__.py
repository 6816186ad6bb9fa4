"""Tokens at rest: authenticated encryption under rotating keys, in a shared vault."""
