"""Form pieces shared across blueprints."""

from __future__ import annotations

import re

from wtforms import IntegerField, ValidationError
from wtforms.validators import Length, StopValidation

from app.i18n import _

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
                _("Whole shillings only, like 1250.")
                if re.fullmatch(r"\d+\.\d+", text)
                else _("Enter an amount in shillings, like 1250.")
            )
            raise ValueError(message)
        self.data = int(text)

    def pre_validate(self, form):
        """An amount that could not be read is one error, not two: the range check after it
        would only say again that there is no amount."""
        if self.process_errors:
            raise StopValidation()


class SignInEmail:
    """WTForms validator: the accounts rule for a sign-in email
    (app.auth.accounts.email_problem)."""

    def __call__(self, form, field):
        from app.auth.accounts import email_problem

        problem = email_problem(field.data)
        if problem is not None:
            raise ValidationError(problem)


class _AtMost(Length):
    def __call__(self, form, field):
        try:
            super().__call__(form, field)
        except ValidationError as err:
            raise StopValidation(str(err)) from None


def at_most(limit: int, sentence) -> Length:
    """The length rule for a text field: WTForms renders it as the input's `maxlength`, and a
    longer value (sent without the browser) is refused with one sentence, the field's other
    checks skipped. The sentence is whole, so each language words it its own way, with
    `%(max)d` for the limit: at_most(120, lazy("A name has at most %(max)d characters."))
    says "A name has at most 120 characters."."""
    return _AtMost(max=limit, message=sentence)
