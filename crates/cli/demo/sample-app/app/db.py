import sqlite3
import subprocess


def find_user(conn: sqlite3.Connection, name: str):
    cursor = conn.cursor()
    # Built by string formatting: an SQL injection.
    cursor.execute("SELECT * FROM users WHERE name = '%s'" % name)
    return cursor.fetchall()


def archive(path: str) -> None:
    # A shell command line built from input: a command injection.
    subprocess.call("tar czf backup.tgz " + path, shell=True)


def evaluate(expression: str):
    return eval(expression)
