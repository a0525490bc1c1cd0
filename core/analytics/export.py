"""Spend tables as files (CSV with exact decimal strings, Parquet with decimal128 columns) and as chart input."""

from __future__ import annotations

import io
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def _is_decimal(series: pd.Series) -> bool:
    return series.dtype == object and series.map(lambda v: isinstance(v, Decimal)).any()


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """CSV with money as exact decimal strings (e.g. 12.345678900), UTF-8."""
    out = frame.copy()
    for col in out.columns:
        if _is_decimal(out[col]):
            out[col] = [None if v is None else f"{v:f}" for v in out[col]]
    return out.to_csv(index=False).encode()


def to_parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Parquet; money columns as decimal128(38, 9)."""
    arrays = {}
    for col in frame.columns:
        values = frame[col]
        if _is_decimal(values):
            arrays[col] = pa.array(
                [None if v is None else Decimal(v).quantize(Decimal("0.000000001")) for v in values],
                type=pa.decimal128(38, 9),
            )
        else:
            arrays[col] = pa.array(values.tolist())
    buf = io.BytesIO()
    pq.write_table(pa.table(arrays), buf)
    return buf.getvalue()


def chart_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The same table with Decimal columns as floats, for plotting only (downloads keep the exact values)."""
    out = frame.copy()
    for col in out.columns:
        if _is_decimal(out[col]):
            out[col] = [float(v) if v is not None else None for v in out[col]]
    return out
