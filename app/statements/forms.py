from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import IntegerField
from wtforms.validators import InputRequired

from app.i18n import lazy


class UploadForm(FlaskForm):
    statement = FileField(
        lazy("Statement file (CSV or XLSX)"),
        validators=[
            FileRequired(
                message=lazy("Choose the statement file you exported from the M-Pesa portal.")
            )
        ],
    )


class AttachForm(FlaskForm):
    # A plain number, not a SelectField: another bar's tab must be a 404, not a form error.
    tab_id = IntegerField(
        lazy("Tab"),
        validators=[InputRequired(message=lazy("Choose the tab to attach the payment to."))],
    )


class ReceiptForm(FlaskForm):
    payment_id = IntegerField(
        lazy("Payment"),
        validators=[InputRequired(message=lazy("Choose the payment this receipt belongs to."))],
    )
