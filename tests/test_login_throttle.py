"""Fair sign-in throttling: a guesser is slowed down without locking the real person out.

Failures count per (address, account) pair, per address (generously) and per account; a device
that signed in to the account before is its own pair and skips the address and account limits.
"""

from __future__ import annotations

from itsdangerous import URLSafeTimedSerializer

from app.auth import throttle
from tests.conftest import TEST_SECRET_KEY, Client

COUNTER = "198.51.100.20"  # the bar's Wi-Fi
STRANGER = "203.0.113.7"


def client_at(app, address: str) -> Client:
    app.test_client_class = Client
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def device_cookie(client: Client):
    return client.get_cookie(throttle.DEVICE_COOKIE, path=throttle.DEVICE_COOKIE_PATH)


def throttle_from(client: Client, user, tries: int = 12) -> None:
    """Wrong passwords until they are refused, and a few more while refused."""
    answers = [client.login(user, password="wrong password").status_code for _ in range(tries)]
    assert 429 in answers and set(answers) == {200, 429}, answers


def test_the_right_password_signs_in_while_the_wrong_one_is_throttled_from_another_address(
    app, cashier
):
    stranger = client_at(app, STRANGER)
    throttle_from(stranger, cashier)
    assert stranger.login(cashier).status_code == 429  # that pair waits, right password or not

    # The cashier, at the counter, on a device that never signed in before:
    response = client_at(app, COUNTER).login(cashier)
    assert response.status_code == 302 and response.headers["Location"] == "/tabs/"


def test_refused_attempts_do_not_count_so_one_address_cannot_lock_the_account(app, cashier):
    app.config["LOGIN_LIMIT_PER_PAIR"] = "3 per 5 minutes"
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "5 per 5 minutes"
    stranger = client_at(app, STRANGER)
    throttle_from(stranger, cashier, tries=20)  # 3 failures, then 17 refusals that check nothing
    assert client_at(app, COUNTER).login(cashier).status_code == 302


def test_a_known_device_signs_in_while_the_account_is_throttled_from_everywhere(app, cashier):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "4 per 5 minutes"
    tablet = client_at(app, COUNTER)
    assert tablet.login(cashier).status_code == 302
    tablet.post("/logout")
    for n in range(4):  # a crowd of addresses, one guess each
        assert (
            client_at(app, f"203.0.113.{10 + n}").login(cashier, "guess guess").status_code == 200
        )

    # A new device, even with the right password, waits for the account-wide limit...
    newcomer = client_at(app, "192.0.2.50")
    response = newcomer.login(cashier)
    assert response.status_code == 429
    assert b"A device you have signed in from before can sign in now." in response.data
    # ...the cashier's own tablet does not.
    assert tablet.login(cashier).status_code == 302
    assert tablet.get("/tabs/").status_code == 200


def test_a_known_device_is_not_refused_for_a_stranger_at_the_same_counter(app, cashier):
    tablet = client_at(app, COUNTER)
    assert tablet.login(cashier).status_code == 302
    tablet.post("/logout")
    throttle_from(client_at(app, COUNTER), cashier)  # someone's phone on the same Wi-Fi
    assert tablet.login(cashier).status_code == 302


def test_a_known_devices_own_wrong_passwords_are_still_throttled(app, cashier):
    app.config["LOGIN_LIMIT_PER_PAIR"] = "3 per 5 minutes"
    tablet = client_at(app, COUNTER)
    tablet.login(cashier)
    tablet.post("/logout")
    for _ in range(3):
        assert tablet.login(cashier, password="wrong password").status_code == 200
    assert tablet.login(cashier).status_code == 429  # no way around the limit for a guesser


def test_a_device_known_for_one_account_is_a_stranger_to_another(app, cashier, manager):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "2 per 5 minutes"
    tablet = client_at(app, COUNTER)
    tablet.login(cashier)
    tablet.post("/logout")
    for n in range(2):
        for person in (cashier, manager):
            client_at(app, f"203.0.113.{20 + n}").login(person, password="guess guess")
    assert tablet.login(manager).status_code == 429
    assert tablet.login(cashier).status_code == 302


def test_the_device_cookie_is_signed_httponly_long_lived_and_holds_no_secret(app, cashier):
    tablet = client_at(app, COUNTER)
    response = tablet.login(cashier)
    header = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith(throttle.DEVICE_COOKIE)
    )
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Path=/login" in header
    assert f"Max-Age={365 * 86400}" in header
    value = device_cookie(tablet).value
    assert TEST_SECRET_KEY not in value and cashier.password_hash not in value
    data = URLSafeTimedSerializer(TEST_SECRET_KEY, salt="pesatab.known-device").loads(value)
    assert data["u"] == [cashier.id] and len(data["d"]) >= 16


def test_a_forged_or_edited_device_cookie_is_a_stranger(app, cashier):
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "2 per 5 minutes"
    tablet = client_at(app, COUNTER)
    tablet.login(cashier)
    tablet.post("/logout")
    genuine = device_cookie(tablet).value
    forged = URLSafeTimedSerializer("not-the-apps-key", salt="pesatab.known-device").dumps(
        {"d": "made-up-device", "u": [cashier.id]}
    )
    for n in range(2):
        client_at(app, f"203.0.113.{30 + n}").login(cashier, password="guess guess")
    for value in (forged, "garbage", genuine[:-3] + "abc", genuine):
        other = client_at(app, "192.0.2.60")
        other.set_cookie(throttle.DEVICE_COOKIE, value, path=throttle.DEVICE_COOKIE_PATH)
        assert other.login(cashier).status_code == (302 if value == genuine else 429)


def test_a_shared_tablet_knows_each_account_signed_in_from_it(app, cashier, factory, bar):
    second = factory.user(bar, "cashier", name="Baraka Cashier")
    tablet = client_at(app, COUNTER)
    for person in (cashier, second):
        assert tablet.login(person).status_code == 302
        tablet.post("/logout")
    value = device_cookie(tablet).value
    data = URLSafeTimedSerializer(TEST_SECRET_KEY, salt="pesatab.known-device").loads(value)
    assert data["u"] == [second.id, cashier.id]


def test_setting_a_password_through_a_link_makes_the_device_known(app, owner):
    from app.auth import accounts

    person, token = accounts.add_staff(owner.bar, owner, "Baraka", "b@kwa.example.com", "cashier")
    phone = client_at(app, COUNTER)
    phone.post(
        f"/set-password/{token}", data={"password": "baraka's pass", "confirm": "baraka's pass"}
    )
    assert device_cookie(phone) is not None


def test_spraying_many_accounts_from_one_address_is_still_capped(app, owner):
    app.config["LOGIN_LIMIT_PER_ADDRESS"] = "4 per 5 minutes"
    sprayer = client_at(app, STRANGER)
    for n in range(4):
        sprayer.post("/login", data={"email": f"guess{n}@example.com", "password": "guess guess"})
    assert sprayer.login(owner).status_code == 429
    assert client_at(app, COUNTER).login(owner).status_code == 302


def test_a_known_device_is_not_held_up_by_someone_spraying_from_its_address(app, owner, cashier):
    app.config["LOGIN_LIMIT_PER_ADDRESS"] = "4 per 5 minutes"
    tablet = client_at(app, COUNTER)
    tablet.login(cashier)
    tablet.post("/logout")
    sprayer = client_at(app, COUNTER)  # the same Wi-Fi
    for n in range(4):
        sprayer.post("/login", data={"email": f"guess{n}@example.com", "password": "guess guess"})
    assert sprayer.login(owner).status_code == 429  # a device the owner never used
    assert tablet.login(cashier).status_code == 302


def test_a_phone_number_typed_any_way_is_one_account_for_the_limits(app, owner):
    from app.auth import accounts

    person, _ = accounts.add_staff(
        owner.bar, owner, "Baraka", None, "cashier", phone="0712 345 678"
    )
    app.config["LOGIN_LIMIT_PER_PAIR"] = "3 per 5 minutes"
    stranger = client_at(app, STRANGER)
    for typed in ("0712345678", "+254 712 345 678", "254712345678"):
        stranger.post("/login", data={"email": typed, "password": "guess guess"})
    response = stranger.post("/login", data={"email": "712 345 678", "password": "guess guess"})
    assert response.status_code == 429
