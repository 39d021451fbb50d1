import os
import shutil
from pathlib import Path

from flask import Flask, request, send_file, send_from_directory
from werkzeug.utils import secure_filename

app = Flask(__name__)
BASE = "/srv/uploads"


@app.route("/download")
def download():
    name = request.args.get("name")
    # ruleid: picket.python.path-traversal
    return send_file(os.path.join(BASE, name))


@app.route("/read")
def read():
    # ruleid: picket.python.path-traversal
    with open(BASE + "/" + request.args["file"]) as f:
        return f.read()


@app.route("/delete", methods=["POST"])
def delete():
    target = request.form["path"]
    # ruleid: picket.python.path-traversal
    shutil.rmtree(target)
    # ruleid: picket.python.path-traversal
    text = Path(BASE, request.values.get("p")).read_text()
    return text


@app.route("/safe")
def safe():
    name = secure_filename(request.args.get("name"))
    # ok: picket.python.path-traversal
    with open(os.path.join(BASE, name)) as f:
        data = f.read()
    # ok: picket.python.path-traversal
    with open(os.path.join(BASE, os.path.basename(request.args["n"]))) as g:
        data += g.read()
    # ok: picket.python.path-traversal
    return send_from_directory(BASE, request.args["name"])


def report(request):
    # ruleid: picket.python.path-traversal
    return open("/var/reports/" + request.GET["report"]).read()


def static_file():
    # ok: picket.python.path-traversal
    return open(os.path.join(BASE, "index.html")).read()
