"""Statuses, roles, flag reasons and purposes are spelt once, in app/enums.py.

A bare "paid" or "owner" elsewhere in app/ is a second spelling that can drift from the first
(a typo compares false and silently hides a payment); these tests find one in Python (every
string constant) and in templates (a quoted word compared or used as a key). Each checker is
also run on a small sample that must fail, so a checker that finds nothing is itself caught.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from app.enums import FlagReason, PaymentStatus, Purpose, Role

APP = Path(__file__).resolve().parent.parent / "app"
STATUS_OR_ROLE = {w.value for w in PaymentStatus} | {w.value for w in Role}
FLAGS = {w.value for w in FlagReason}
PURPOSES = {w.value for w in Purpose}

# The same word meaning something else: (file under app/, word) -> why it is not ours.
OTHER_MEANINGS = {
    ("jobs/__init__.py", "failed"): "a job run's outcome label, not a payment's",
    ("health/metrics.py", "failed"): "job and token-fetch outcome labels",
    ("health/metrics.py", "late_success"): "a callback's disposition label",
    ("payments/ledger.py", "late_success"): "the callback disposition it returns",
    ("mpesa/errors.py", "unknown"): "the kind of an unrecognised Daraja error",
    ("simulator/api.py", "unknown"): "the simulator's catch-all endpoint name",
}


def _is_purpose(node: ast.AST) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "purpose") or (
        isinstance(node, ast.Name) and node.id == "purpose"
    )


def python_literals(source: str, where: str) -> list[str]:
    """Every bare status, role or flag word in `source`, and every purpose compared as a string."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            word = node.value
            if (word in STATUS_OR_ROLE or word in FLAGS) and (where, word) not in OTHER_MEANINGS:
                found.append(f"app/{where}:{node.lineno}: {word!r}")
        elif isinstance(node, ast.Compare) and any(
            _is_purpose(side) for side in (node.left, *node.comparators)
        ):
            for side in (node.left, *node.comparators):
                for leaf in ast.walk(side):
                    if isinstance(leaf, ast.Constant) and leaf.value in PURPOSES:
                        found.append(f"app/{where}:{leaf.lineno}: purpose {leaf.value!r}")
        elif (
            isinstance(node, ast.keyword)
            and node.arg == "purpose"
            and isinstance(node.value, ast.Constant)
            and node.value.value in PURPOSES
        ):
            found.append(f"app/{where}:{node.value.lineno}: purpose={node.value.value!r}")
    return found


def _quoted(words: set[str]) -> str:
    return r"""['"](?:""" + "|".join(sorted(words)) + r""")['"]"""


_ANY, _OURS = _quoted(STATUS_OR_ROLE | PURPOSES), _quoted(STATUS_OR_ROLE)
# Compared (== 'paid', 'test' !=); a status or role listed (in ('owner', ...)) or a key (['paid']).
# A purpose word is only caught compared: 'tab' is also a form field's name.
TEMPLATE_USE = re.compile(
    rf"(?:==|!=)\s*{_ANY}|{_ANY}\s*(?:==|!=)|[(\[]\s*{_OURS}\s*[,)\]]|{_OURS}\s*:"
)


def template_literals(text: str, where: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for block in re.findall(r"{[{%](.*?)[%}]}", line):
            found += [f"app/{where}:{number}: {m.group(0)}" for m in TEMPLATE_USE.finditer(block)]
    return found


def test_no_status_role_flag_or_purpose_literal_in_python():
    found = []
    for path in sorted(APP.rglob("*.py")):
        where = path.relative_to(APP).as_posix()
        if where == "enums.py" or where.startswith("migrations/"):
            continue
        found += python_literals(path.read_text(), where)
    assert not found, "spell these through app/enums.py:\n" + "\n".join(found)


def test_no_status_role_or_purpose_literal_in_templates():
    found = []
    for path in sorted((APP / "templates").rglob("*")):
        if path.is_file():
            found += template_literals(path.read_text(), path.relative_to(APP).as_posix())
    assert not found, "use PaymentStatus, Purpose, Role or MONEY_ROLES:\n" + "\n".join(found)


def test_other_meanings_are_still_there():
    """An allowance whose word has gone from its file is stale: remove it."""
    for (where, word), _why in OTHER_MEANINGS.items():
        source = (APP / where).read_text()
        assert f'"{word}"' in source, f"app/{where} no longer says {word!r}: drop the allowance"


def test_the_checkers_catch_what_they_are_for():
    sample = (
        'if payment.status == "paid": pass\n'
        '@role_required("owner", "manager")\ndef f(): pass\n'
        'flag(payment, "amount_mismatch")\n'
        'if payment.purpose != "test": pass\n'
        'Payment(purpose="tab")\n'
        'label = "pay the tab"\n'
    )
    found = python_literals(sample, "sample.py")
    assert len(found) == 6, found
    assert not python_literals('x = "tab"\nname = "paid by M-Pesa"\n', "sample.py")
    page = (
        "{% if payment.status == 'paid' %}{% if current_user.role in ('owner', 'manager') %}\n"
        "{{ figures.kes['paid'] }} {{ event.source or 'unknown' }} <p>'paid'</p>\n"
    )
    assert len(template_literals(page, "sample.html")) == 3, template_literals(page, "sample.html")
