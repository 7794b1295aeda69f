"""Bad input never reaches a handler as a 500: bounded integers, unstorable text refused,
bodies cut at the limit while they are read (issue 8, section 2)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from bs4 import BeautifulSoup
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.conftest import csrf_from, login
from web.params import MAX_INDEX, MAX_ROW_ID, bounded_digits, int_param
from web.settings import Settings

LIMIT = 256 * 1024  # max_upload_bytes for these tests


@pytest.fixture
def settings_small(tmp_path: Path) -> Settings:
    return Settings.from_env(
        data_dir=tmp_path / "var", database_url=f"sqlite:///{tmp_path / 'servicepoint.db'}",
        secret_key_override="test-secret-key-not-for-production", max_upload_bytes=LIMIT,
    )


def message(html: str) -> str:
    return BeautifulSoup(html, "html.parser").get_text(" ", strip=True)


# --- integers --------------------------------------------------------------------------------


@settings(max_examples=300, derandomize=True)
@given(st.integers(0, 10**20), st.sampled_from([MAX_ROW_ID, MAX_INDEX, 9, 10, 100, 2026]))
def test_bounded_digits_matches_exactly_the_numbers_up_to_the_bound(n: int, top: int) -> None:
    assert bool(re.fullmatch(bounded_digits(top), str(n))) == (n <= top)


@pytest.mark.parametrize(("top", "inside", "outside"), [(MAX_ROW_ID, "2147483647", "2147483648"),
                                                        (MAX_INDEX, "9223372036854775807", "9223372036854775808")])
def test_bounded_digits_boundary(top: int, inside: str, outside: str) -> None:
    # PostgreSQL INTEGER / BIGINT upper bounds (docs: "Numeric Types", table 8.2).
    assert re.fullmatch(bounded_digits(top), inside)
    assert not re.fullmatch(bounded_digits(top), outside)


@pytest.mark.parametrize("raw", ["²", "١٢", "１２", "-1", "1e3", " ", "", None, "9" * 30, "2147483648"])
def test_int_param_takes_only_ascii_digits_in_range(raw: Any) -> None:
    assert int_param(raw) is None


def test_int_param_accepts_the_bounds() -> None:
    assert int_param(" 0 ") == 0
    assert int_param(str(MAX_ROW_ID)) == MAX_ROW_ID
    assert int_param("2026", low=2000, high=2100) == 2026


@pytest.mark.parametrize(
    "path",
    [
        "/admin/staff/999999999999999999999999999999",  # the example
        "/admin/staff/2147483648",  # one past PostgreSQL INTEGER
        "/admin/catalog/99999999999999999999/v/1",
        "/admin/grants/99999999999",
        "/audit/entries/99999999999999999999",  # one past BIGINT's digits
    ],
)
def test_oversized_ids_in_paths_are_404(demo: object, client: TestClient, path: str) -> None:
    login(client, "admin" if path.startswith("/admin") else "auditor")
    assert client.get(path).status_code == 404


def test_largest_row_id_reaches_the_handler_without_a_500(demo: object, client: TestClient) -> None:
    login(client, "admin")  # 404 (no such staff) or 403 (the staff guard refuses first)
    assert client.get(f"/admin/staff/{MAX_ROW_ID}").status_code in (403, 404)
    assert client.get(f"/admin/grants/{MAX_ROW_ID}").status_code == 404


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/admin/catalog", {"page": "9" * 30}, 200),
        ("/admin/catalog", {"page": "²"}, 200),
        ("/admin/calendar", {"year": "²"}, 200),
        ("/audit/", {"after_index": "9" * 40}, 200),
        ("/audit/", {"actor": "9" * 30}, 422),  # not an id: looked up as a user name, not found
    ],
)
def test_oversized_or_odd_numbers_in_queries_are_not_500(demo: object, client: TestClient, path: str,
                                                          params: dict[str, str], status: int) -> None:
    login(client, "auditor" if path.startswith("/audit") else "admin")
    assert client.get(path, params=params).status_code == status


def test_oversized_ids_in_forms_are_a_message(demo: object, client: TestClient) -> None:
    login(client, "admin")
    r = client.post("/admin/grants/new", data={"agreement_id": "9" * 30, "valid_from": "2026-10-01",
                                               "valid_to": "2026-12-31", "matter_ids": "9" * 30})
    assert r.status_code == 422
    assert "请选择合作协议" in message(r.text)


# --- unstorable text --------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["a\x00b", "\x00", "admin\x00"])
def test_nul_in_login_form_is_422_and_never_logs_in(client: TestClient, username: str) -> None:
    page = client.get("/login")  # no staff session: no form handler to re-render, refused at once
    r = client.post("/login", data={"username": username, "password": "x", "csrf_token": csrf_from(page.text)})
    assert r.status_code == 422
    assert "不可见的控制字符" in message(r.text)


@pytest.mark.parametrize("body", [b"a%00=1", b"b=%C3%00%A9", b"b=%FF%00"])
def test_nul_in_a_form_field_name_or_beside_bad_utf8_stays_400(client: TestClient, body: bytes) -> None:
    page = client.get("/login")
    r = client.post("/login", content=body + b"&csrf_token=" + csrf_from(page.text).encode(),
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400


@pytest.mark.parametrize("query", ["q=%00", "q=%ED%A0%80", "q=%FF%FE", "%00=1"])
def test_unstorable_query_text_is_400_on_any_route(client: TestClient, query: str) -> None:
    for path in ("/login", "/status/x", "/nowhere"):
        r = client.get(f"{path}?{query}")
        assert r.status_code == 400, path
        assert "无法保存的字符" in message(r.text)


def test_nul_in_path_is_400(client: TestClient) -> None:
    assert client.get("/status/ab%00cd").status_code == 400


def test_unstorable_json_and_multipart_text_are_400(demo: object, client: TestClient) -> None:
    login(client, "teller1")
    r = client.post("/assist/sessions/1/stats", content=b'{"a": "\\ud800"}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = client.post("/assist/sessions/1/stats", content=b'{"a\\u0000": 1}',
                    headers={"content-type": "application/json"})
    assert r.status_code == 400
    r = client.post("/cases/X/materials/m1/upload", data={"note": "a\x00"},
                    files={"file": ("a.pdf", b"%PDF-1.4", "application/pdf")})
    assert r.status_code == 400
    # A raw part header: httpx would percent-escape the NUL in a file name, browsers may not.
    body = (b'--zzz\r\nContent-Disposition: form-data; name="file"; filename="a\x00.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n%PDF-1.4\r\n--zzz--\r\n")
    r = client.post("/cases/X/materials/m1/upload", content=body,
                    headers={"content-type": "multipart/form-data; boundary=zzz"})
    assert r.status_code == 400


def test_other_control_characters_are_dropped_from_form_values_without_refusal() -> None:
    from urllib.parse import parse_qs

    from web.inputs import strip_form_controls

    body, fields = strip_form_controls(
        b"name=%E5%BC%A0%07%E4%B8%89&note=a%0D%0Ab%09c%0B&x=%1B%7F&y=%00ok")
    form = parse_qs(body.decode(), keep_blank_values=True)
    # BEL, VT, ESC and DEL vanish; tab and line breaks stay; only the NUL names its field
    assert form == {"name": ["张三"], "note": ["a\r\nb\tc"], "x": [""], "y": ["ok"]}
    assert fields == ["y"]
    assert strip_form_controls(b"a=1&b=%E4%B8%89") == (b"a=1&b=%E4%B8%89", [])


def test_ordinary_unicode_passes_the_guard(client: TestClient) -> None:
    r = client.get("/status/%E5%8A%9E%E4%BB%B6", params={"q": "张三 😀 ﬁ"})
    assert r.status_code != 400


# --- body size, enforced while reading --------------------------------------------------------


def _drive(app: Any, path: str, headers: list[tuple[bytes, bytes]], chunk: int, total: int) -> tuple[int, int]:
    """Send a chunked body (no Content-Length) of ``total`` bytes straight through ASGI;
    returns (status, bytes the app pulled)."""
    pulled = 0
    status = 0

    head = (b'--zzz\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
            b"Content-Type: application/pdf\r\n\r\n%PDF-1.4\n")

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= total:
            return {"type": "http.disconnect"}
        body = head if pulled == 0 else b"x" * chunk  # one well-formed file part, never ending
        pulled += len(body)
        return {"type": "http.request", "body": body, "more_body": pulled < total}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": [(b"host", b"testserver"), *headers], "client": ("127.0.0.1", 1),
             "server": ("testserver", 80), "root_path": "", "app": app}
    asyncio.run(app(scope, receive, send))
    return status, pulled


@pytest.mark.parametrize("with_csrf_header", [False, True])
def test_chunked_upload_without_length_is_cut_at_the_limit(demo: object, settings_small: Settings,
                                                           with_csrf_header: bool) -> None:
    from web.app import create_app

    app = create_app(settings_small)
    with TestClient(app) as client:
        login(client, "teller1")
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        headers = [(b"cookie", cookie.encode()),
                   (b"content-type", b"multipart/form-data; boundary=zzz"),
                   (b"transfer-encoding", b"chunked")]
        if with_csrf_header:
            headers.append((b"x-csrf-token", client.headers["X-CSRF-Token"].encode()))
        chunk, total = 64 * 1024, 300 * 1024 * 1024  # the 300 MB
        status, pulled = _drive(app, "/cases/X/materials/m1/upload", headers, chunk, total)
    assert status == 413
    assert pulled <= LIMIT + 1024 * 1024 + chunk  # stopped at the limit, not at 300 MB


def test_announced_oversized_body_is_refused_before_reading(client: TestClient) -> None:
    r = client.post("/login", content=b"x" * (2 * 1024 * 1024),
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413
