import urllib.request

import httpx
import requests
from flask import Flask, request

app = Flask(__name__)


@app.route("/preview")
def preview():
    url = request.args.get("url")
    # ruleid: picket.python.ssrf
    page = requests.get(url, timeout=5)
    # ruleid: picket.python.ssrf
    head = httpx.head(request.form["target"])
    # ruleid: picket.python.ssrf
    raw = urllib.request.urlopen("http://" + request.args["host"] + "/status").read()
    # ruleid: picket.python.ssrf
    hook = requests.post(f"{request.args['callback']}/notify", json={})
    # ok: picket.python.ssrf
    user = requests.get(f"https://api.example.com/users/{request.args['id']}")
    # ok: picket.python.ssrf
    search = requests.get("https://api.example.com/search", params={"q": request.args["q"]})
    # ok: picket.python.ssrf
    repo = requests.get("https://api.github.com/repos/" + request.args["repo"])
    return page.text, head, raw, hook, user, search, repo


def django_fetch(request):
    # ruleid: picket.python.ssrf
    return requests.get(request.GET["feed"]).text
