"""Factories for the objects tests need, committed so live servers in other threads see them."""

from __future__ import annotations

import itertools
import secrets

from app.extensions import db
from app.models import Bar, Payment, Tab, TabLine, User

_seq = itertools.count(1)


class Factory:
    PASSWORD = "correct horse battery"

    def __init__(self, app):
        self.app = app

    def bar(self, name: str = "Test Bar", **fields) -> Bar:
        bar = Bar(name=name, slug=f"{Bar.unique_slug(name)}", **fields)
        db.session.add(bar)
        db.session.commit()
        return bar

    def user(
        self,
        bar: Bar,
        role: str = "owner",
        *,
        name: str | None = None,
        email: str | None = None,
        password: str | None = PASSWORD,
        active: bool = True,
    ) -> User:
        n = next(_seq)
        user = User(
            bar=bar,
            name=name or f"{role.title()} {n}",
            email=email or f"{role}{n}@{bar.slug}.example.com",
            role=role,
            active=active,
        )
        if password is not None:
            user.set_password(password, self.app.config["PASSWORD_HASH_METHOD"])
        db.session.add(user)
        db.session.commit()
        return user

    def payment(
        self,
        bar: Bar,
        *,
        status: str = "sent",
        amount: int = 450,
        phone: str = "254708374149",
        purpose: str = "tab",
        tab=None,
        **fields,
    ) -> Payment:
        n = next(_seq)
        payment = Payment(
            bar_id=bar.id,
            tab_id=tab.id if tab is not None else None,
            purpose=purpose,
            phone=phone,
            amount=amount,
            account_reference=f"TAB{n}",
            description="Bar tab",
            status=status,
            callback_token=secrets.token_hex(20),
            checkout_request_id=fields.pop("checkout_request_id", f"ws_CO_TEST{n:08d}"),
            **fields,
        )
        db.session.add(payment)
        db.session.commit()
        return payment

    def tab(
        self,
        bar: Bar,
        label: str = "Table 4",
        *,
        lines: tuple[tuple[str, int, int], ...] = (),
        status: str = "open",
    ) -> Tab:
        from app.models import utcnow

        tab = Tab(
            bar_id=bar.id,
            label=label,
            status=status,
            closed_at=None if status == "open" else utcnow(),
        )
        tab.lines = [TabLine(description=d, quantity=q, unit_price=p) for d, q, p in lines]
        db.session.add(tab)
        db.session.commit()
        return tab

    def live_credentials(self, bar: Bar, *, kind: str = "paybill") -> None:
        """Give `bar` the simulator's sandbox credentials, verified and live."""
        from app.models import utcnow
        from app.settings import vault
        from app.simulator import (
            SANDBOX_PASSKEY,
            SANDBOX_SHORTCODE,
            SIM_CONSUMER_KEY,
            SIM_CONSUMER_SECRET,
            TILL_NUMBER,
            TILL_PASSKEY,
            TILL_STORE_NUMBER,
        )

        till = kind == "till"
        vault.save(
            bar,
            vault.CredentialInput(
                environment="sandbox",
                kind=kind,
                shortcode=TILL_STORE_NUMBER if till else SANDBOX_SHORTCODE,
                till_number=TILL_NUMBER if till else None,
                consumer_key=SIM_CONSUMER_KEY,
                consumer_secret=SIM_CONSUMER_SECRET,
                passkey=TILL_PASSKEY if till else SANDBOX_PASSKEY,
            ),
        )
        cred = vault.credential_for(bar)
        cred.verified_revision, cred.verified_at = cred.revision, utcnow()
        bar.setup_state = "live"
        db.session.commit()
