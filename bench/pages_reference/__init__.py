"""Bench-only reference views, served by the same server, middleware and settings as the
shop's pages (bench/pages_bench.py). Nothing here is part of the product's URLconf."""
