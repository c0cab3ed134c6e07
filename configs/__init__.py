"""Shipped configs, installed as nse_hw.configs; read them through nse_hw.paths."""
