import sqlite3

import pandas as pd
from sqlalchemy import text


def lookup(conn: sqlite3.Connection, user_id, name, order):
    cur = conn.cursor()
    # ruleid: picket.python.sql-injection
    cur.execute(f"SELECT * FROM users WHERE id = {user_id}")
    # ruleid: picket.python.sql-injection
    cur.execute("SELECT * FROM users WHERE name = '%s'" % name)
    # ruleid: picket.python.sql-injection
    cur.execute("SELECT * FROM users ORDER BY {}".format(order))
    query = "SELECT * FROM users WHERE name = '" + name + "'"
    # ruleid: picket.python.sql-injection
    cur.execute(query)
    # ruleid: picket.python.sql-injection
    conn.executemany("DELETE FROM users WHERE name = '%s'" % name, [])
    # ok: picket.python.sql-injection
    cur.execute("SELECT * FROM users WHERE id = %s", (user_id,))
    # ok: picket.python.sql-injection
    cur.execute(f"SELECT * FROM users")
    # ok: picket.python.sql-injection
    cur.execute("SELECT * FROM users " + "WHERE active")
    # ok: picket.python.sql-injection
    cur.execute("SELECT * FROM users WHERE name = :n", {"n": "%s%%" % name})


def orm(session, engine, name):
    # ruleid: picket.python.sql-injection
    session.execute(text(f"SELECT * FROM users WHERE name = '{name}'"))
    # ok: picket.python.sql-injection
    session.execute(text("SELECT * FROM users WHERE name = :name"), {"name": name})
    # ruleid: picket.python.sql-injection
    df = pd.read_sql("SELECT * FROM users WHERE name = '" + name + "'", engine)
    # ruleid: picket.python.sql-injection
    rows = User.objects.raw("SELECT * FROM app_user WHERE name = '%s'" % name)
    # ok: picket.python.sql-injection
    rows = User.objects.raw("SELECT * FROM app_user WHERE name = %s", [name])
    return df, rows


def build(name):
    # ruleid: picket.python.sql-injection
    stmt = text("SELECT * FROM users WHERE name = '%s'" % name)
    return stmt
