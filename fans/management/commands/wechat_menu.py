"""``python manage.py wechat_menu push FILE | show | delete``: the account's menu."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.urls import reverse

from fans.auth import login_url, public_url
from xgc import tokens, wechat

# {login} or {login:/some/path} in a view button's url: xgc's login link.
LOGIN_PLACEHOLDER = re.compile(r"\{login(?::([^}]*))?\}")
# WeChat answers 46003 when no menu is published.
NO_MENU = 46003


class Command(BaseCommand):
    help = "Publish, show or delete the official account's custom menu."

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        push = actions.add_parser("push", help="check FILE, then publish it as the menu")
        push.add_argument("file", type=Path, help="WeChat's menu JSON, with {login} placeholders")
        actions.add_parser("show", help="print the published menu")
        actions.add_parser("delete", help="remove the published menu")

    def handle(self, *args, action: str, **options):
        try:
            if action == "push":
                self.push(options["file"])
            elif action == "show":
                self.show()
            else:
                tokens.with_platform_token(wechat.delete_menu)
                self.stdout.write("Menu deleted.")
        except wechat.WeChatError as error:
            raise CommandError(str(error)) from None

    def push(self, path: Path) -> None:
        try:
            menu = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
        buttons = menu.get("button") if isinstance(menu, dict) else None
        for button in _view_buttons(buttons):
            button["url"] = expand_login(str(button.get("url", "")))
        problems = wechat.menu_problems(buttons)
        if problems:
            raise CommandError(
                f"{path} breaks WeChat's menu rules:\n" + "\n".join(f"  {p}" for _, p in problems)
            )
        tokens.with_platform_token(lambda token: wechat.create_menu(token, {"button": buttons}))
        self.stdout.write(self.style.SUCCESS("Menu published:"))
        self.write_menu(buttons)

    def show(self) -> None:
        try:
            menu = tokens.with_platform_token(wechat.get_menu)
        except wechat.WeChatError as error:
            if error.errcode != NO_MENU:
                raise
            self.stdout.write("No menu is published.")
            return
        self.write_menu(menu.get("menu", {}).get("button", []))

    def write_menu(self, buttons: list[dict[str, Any]]) -> None:
        for button in buttons:
            self.stdout.write(_describe(button))
            for sub_button in button.get("sub_button") or []:
                self.stdout.write("  └ " + _describe(sub_button))


def expand_login(url: str) -> str:
    """Replace {login} / {login:/path} with the absolute link that signs fans in."""

    def link(match: re.Match) -> str:
        next_path = match.group(1)
        return public_url(login_url(next_path) if next_path else reverse("wechat-login"))

    return LOGIN_PLACEHOLDER.sub(link, url)


def _view_buttons(buttons: Any) -> list[dict[str, Any]]:
    if not isinstance(buttons, list):
        return []
    found = []
    for button in buttons:
        if not isinstance(button, dict):
            continue
        found += [button, *[sub for sub in button.get("sub_button") or [] if isinstance(sub, dict)]]
    return [button for button in found if button.get("type") == "view"]


def _describe(button: dict[str, Any]) -> str:
    target = button.get("url") or button.get("key") or button.get("appid") or ""
    kind = button.get("type", "menu")
    return f"{button.get('name', '')} [{kind}] {target}".rstrip()
