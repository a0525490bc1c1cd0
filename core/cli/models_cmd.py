"""`python -m core models list`."""

from __future__ import annotations

import argparse

from core.cli import Context
from core.cli.output import print_json, print_table
from core.services.models import CATEGORIES, PRICE_FIELDS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="the model catalog")
    s = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = s.add_parser("list", help="list models with their prices")
    ls.add_argument("--category", choices=CATEGORIES)
    ls.add_argument("--provider")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    models = ctx.services.models.list(ctx.caller, category=args.category, provider=args.provider)
    if args.json:
        print_json(
            [
                {
                    "provider": m.provider,
                    "model_id": m.model_id,
                    "model_name": m.model_name,
                    "category": m.category,
                    "deployment_type": m.deployment_type,
                    "cost_unit": m.cost_unit,
                    **{f: getattr(m, f) for f in PRICE_FIELDS},
                    "price_variants": m.price_variants or None,
                    "mirrors": m.mirrors,
                    "hardware_type": m.hardware_type,
                    "hardware_instance_type": m.hardware_instance_type,
                    "price_source": m.price_source,
                    "price_as_of": m.price_as_of,
                }
                for m in models
            ]
        )
    else:
        print_table(
            [
                {
                    "provider": m.provider,
                    "model_id": m.model_id,
                    "category": m.category,
                    "deployment": m.deployment_type,
                    "price": m.price_label(),
                    "hardware": m.hardware_label,
                    "as of": m.price_as_of,
                }
                for m in models
            ]
        )
    return 0
