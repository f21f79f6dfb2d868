"""The service commands of ``neodefense``: ``serve`` (the API and dashboard under uvicorn),
``observatories`` and ``tokens`` (administration from the shell, e.g. the first admin token)."""
from __future__ import annotations

import argparse
import json
from typing import Any


def _settings(args: argparse.Namespace):  # noqa: ANN202
    from neodefense import config as config_mod

    settings = config_mod.load(getattr(args, "config", None))
    if getattr(args, "catalog", None):
        settings = settings.with_overrides(catalog={"url": args.catalog})
    return settings


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the HTTP API and dashboard until interrupted."""
    import uvicorn

    from neodefense.api.app import create_app

    settings = _settings(args)
    host = args.host or str(settings.raw["api"]["host"])
    port = int(args.port if args.port is not None else settings.raw["api"]["port"])
    app = create_app(settings)
    print(f"neodefense API and dashboard on http://{host}:{port}/ (OpenAPI at /docs); "
          f"catalog {app.state.engine.url.render_as_string(hide_password=True)}", flush=True)
    uvicorn.run(app, host=host, port=port, log_level=args.log_level,
                proxy_headers=True, forwarded_allow_ips=args.forwarded_allow_ips)
    return 0


def _engine(args: argparse.Namespace):  # noqa: ANN202
    from neodefense.catalog import db

    return db.connect(_settings(args).catalog_url)


def _account_id(engine: Any, key: str) -> int:
    from neodefense.catalog import access

    found = access.account(engine, int(key) if key.isdigit() else key)
    if found is None:
        raise SystemExit(f"neodefense: no observatory account {key!r}")
    return int(found["id"])


def cmd_observatories(args: argparse.Namespace) -> int:
    """Observatory accounts: add (with station codes), list, stations add/remove, deactivate."""
    from neodefense.catalog import access

    engine = _engine(args)
    try:
        if args.action == "add":
            result: Any = access.create_account(engine, args.name, args.contact or "",
                                                args.station or [])
        elif args.action == "list":
            result = access.accounts(engine)
        elif args.action == "add-station":
            result = access.add_station(engine, _account_id(engine, args.account), args.stn)
        elif args.action == "remove-station":
            result = access.remove_station(engine, _account_id(engine, args.account), args.stn)
        else:  # deactivate
            result = access.deactivate_account(engine, _account_id(engine, args.account))
    except (ValueError, LookupError) as exc:
        raise SystemExit(f"neodefense: {exc}") from None
    if args.json or args.action != "list":
        print_json(result)
    else:
        for acc in result:
            state = "" if acc["active"] else " (deactivated)"
            print(f"{acc['id']:>4}  {acc['name']}{state}: stations "
                  f"{', '.join(acc['stations']) or '-'}")
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    """API tokens: create (printed once), list (no secrets), revoke."""
    from neodefense.catalog import access

    engine = _engine(args)
    try:
        if args.action == "create":
            account_id = _account_id(engine, args.account) if args.account else None
            token_id, token = access.create_token(engine, args.name, args.role, account_id)
            print_json({"id": token_id, "name": args.name, "role": args.role,
                        "account_id": account_id, "token": token,
                        "note": "the token is shown only now; the catalog keeps its hash"})
        elif args.action == "list":
            print_json(access.tokens(engine))
        else:
            print_json(access.revoke_token(engine, args.token_id))
    except (ValueError, LookupError) as exc:
        raise SystemExit(f"neodefense: {exc}") from None
    return 0


def add_commands(sub: Any) -> None:
    """Register the service commands on the ``neodefense`` sub-parser set."""
    p = sub.add_parser("serve", help="the HTTP API (OpenAPI at /docs) and the dashboard")
    p.add_argument("--host", default=None, help="address to listen on (default [api] host)")
    p.add_argument("--port", type=int, default=None, help="port (default [api] port, 8000)")
    p.add_argument("--catalog", metavar="URL", help="catalog URL (default from config)")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--forwarded-allow-ips", default="127.0.0.1", metavar="IPS",
                   help="reverse proxies trusted for X-Forwarded-For/Proto (comma-separated)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("observatories", help="observatory accounts and their station codes")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("add", help="a new account with its station codes")
    a.add_argument("name")
    a.add_argument("--station", action="append", metavar="CODE", help="MPC code (repeatable)")
    a.add_argument("--contact", help="e-mail or address of the observatory's contact")
    for name, text in (("add-station", "let an account submit for one more station"),
                       ("remove-station", "take a station from an account")):
        a = actions.add_parser(name, help=text)
        a.add_argument("account", help="account name or id")
        a.add_argument("stn", help="MPC station code")
    a = actions.add_parser("deactivate", help="deactivate an account (its tokens stop working)")
    a.add_argument("account", help="account name or id")
    actions.add_parser("list", help="every account")
    for a in actions.choices.values():
        a.add_argument("--catalog", metavar="URL", help="catalog URL (default from config)")
        a.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_observatories)

    p = sub.add_parser("tokens", help="API tokens: create (shown once), list, revoke")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("create", help="a new token (observatory, scientist or admin)")
    a.add_argument("--name", required=True, help="who or what holds it")
    a.add_argument("--role", required=True, choices=["observatory", "scientist", "admin"])
    a.add_argument("--account", help="observatory account (name or id) of an observatory token")
    actions.add_parser("list", help="every token (no secrets)")
    a = actions.add_parser("revoke", help="revoke a token (it stops working at once)")
    a.add_argument("token_id", type=int)
    for a in actions.choices.values():
        a.add_argument("--catalog", metavar="URL", help="catalog URL (default from config)")
    p.set_defaults(func=cmd_tokens)


def print_json(data: Any) -> None:
    from neodefense.api.read import clean

    print(json.dumps(clean(data), indent=2))
