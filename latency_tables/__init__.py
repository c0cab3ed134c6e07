"""Shipped latency tables, installed as nse_hw.latency_tables; read them through nse_hw.paths."""
