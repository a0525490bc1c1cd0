"""Models and hardware catalogs (loaded from data/) and price lookup."""

from core.catalog.loader import CatalogFileError, LoadReport, load_catalogs, parse_hardware, parse_models
from core.catalog.lookup import (
    UnknownHardwareError,
    UnknownModelError,
    get_hardware,
    get_model,
    get_model_by_pk,
    list_hardware,
    list_models,
    to_model_price,
)
from core.catalog.types import PRICE_FIELDS, HardwarePrice, ModelPrice

__all__ = [
    "PRICE_FIELDS",
    "CatalogFileError",
    "HardwarePrice",
    "LoadReport",
    "ModelPrice",
    "UnknownHardwareError",
    "UnknownModelError",
    "get_hardware",
    "get_model",
    "get_model_by_pk",
    "list_hardware",
    "list_models",
    "load_catalogs",
    "parse_hardware",
    "parse_models",
    "to_model_price",
]
