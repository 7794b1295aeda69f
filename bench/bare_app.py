"""The baseline for bench/pages_bench.py: two bare Starlette endpoints under the same
uvicorn settings as ``servicepoint serve``.

    python bench/bare_app.py DB_FILE PORT

* ``GET /page``  -- one SQLite read (a row by primary key) and one Jinja2 template render;
* ``POST /form`` -- parse a urlencoded form and insert one row (its own transaction).

No session, no CSRF, no authorization, no audit: the floor a real page is compared to."""

from __future__ import annotations

import sqlite3
import sys
import threading

import uvicorn
from jinja2 import Environment
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

PAGE = Environment(autoescape=True).from_string(
    "<!doctype html><html lang=zh-CN><head><title>{{ row[1] }}</title></head><body>"
    "<h1>{{ row[1] }}</h1><table>{% for i in range(20) %}<tr><td>{{ i }}</td>"
    "<td>{{ row[2] }}</td></tr>{% endfor %}</table></body></html>"
)
_local = threading.local()


def db() -> sqlite3.Connection:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def setup(path: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS item (id INTEGER PRIMARY KEY, name TEXT, note TEXT)")
    conn.execute("INSERT INTO item (name, note) VALUES ('营业执照', '复印件加盖公章')")
    conn.commit()
    conn.close()


async def page(request: Request) -> Response:
    row = await run_in_threadpool(lambda: db().execute("SELECT * FROM item WHERE id = 1").fetchone())
    return HTMLResponse(PAGE.render(row=row))


async def form(request: Request) -> Response:
    data = await request.form()
    name, note = str(data.get("applicant_name", "")), str(data.get("phone", ""))

    def insert() -> None:
        with db() as conn:  # BEGIN ... COMMIT
            conn.execute("INSERT INTO item (name, note) VALUES (?, ?)", (name, note))

    await run_in_threadpool(insert)
    return RedirectResponse("/page", status_code=303)


app = Starlette(routes=[Route("/page", page), Route("/form", form, methods=["POST"])])

if __name__ == "__main__":
    setup(sys.argv[1])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
