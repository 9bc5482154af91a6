"""Form pieces shared across blueprints."""

from __future__ import annotations

import re

from wtforms import IntegerField, ValidationError

_CURRENCY = re.compile(r"^(kes|ksh|ksh\.|sh)\s*", re.IGNORECASE)


class KesField(IntegerField):
    """Whole shillings as people type them: '1,250', 'KES 1250', '1250.00' -> 1250."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        text = _CURRENCY.sub("", valuelist[0].strip()).replace(",", "").replace(" ", "")
        if re.fullmatch(r"\d+\.0*", text):
            text = text.split(".")[0]
        if not re.fullmatch(r"\d+", text):
            self.data = None
            message = (
                "Whole shillings only, like 1250."
                if re.fullmatch(r"\d+\.\d+", text)
                else "Enter an amount in shillings, like 1250."
            )
            raise ValueError(message)
        self.data = int(text)


class SignInEmail:
    """WTForms validator: the accounts rule for a sign-in email
    (app.auth.accounts.email_problem)."""

    def __call__(self, form, field):
        from app.auth.accounts import email_problem

        problem = email_problem(field.data)
        if problem is not None:
            raise ValidationError(problem)
