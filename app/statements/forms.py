from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import IntegerField
from wtforms.validators import InputRequired


class UploadForm(FlaskForm):
    statement = FileField(
        "Statement file (CSV or XLSX)",
        validators=[
            FileRequired(message="Choose the statement file you exported from the M-Pesa portal.")
        ],
    )


class AttachForm(FlaskForm):
    # A plain number, not a SelectField: another bar's tab must be a 404, not a form error.
    tab_id = IntegerField(
        "Tab", validators=[InputRequired(message="Choose the tab to attach the payment to.")]
    )


class ReceiptForm(FlaskForm):
    payment_id = IntegerField(
        "Payment", validators=[InputRequired(message="Choose the payment this receipt belongs to.")]
    )
