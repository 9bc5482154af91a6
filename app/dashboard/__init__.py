"""The signed-in home page (routes.py): what needs the owner's or cashier's eye today."""
