from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from app.api.keys import LABEL_MAX


class CreateKeyForm(FlaskForm):
    label = StringField(
        "Name",
        validators=[DataRequired(message="Give the key a name, like “Till 1 POS”."),
                    Length(max=LABEL_MAX, message=f"A key's name is at most {LABEL_MAX} characters.")],
    )
