"""Adaptive Card builders (Adaptive Cards 1.5). No Teams or HTTP imports."""
