def test_it_serves_the_login_page(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Sign in" in response.data


def test_owner_can_log_in_and_see_the_bar(client, owner):
    response = client.login(owner)
    assert response.status_code == 302
    page = client.get("/dashboard")
    assert owner.bar.name.encode() in page.data
