import os

from flask import Flask
from werkzeug.serving import run_simple

app = Flask(__name__)
# ruleid: picket.python.flask-debug-enabled
app.config["DEBUG"] = True
# ruleid: picket.python.flask-debug-enabled
app.debug = True


def create_app():
    api = Flask("api")
    # ruleid: picket.python.flask-debug-enabled
    api.config.update(DEBUG=True, TESTING=False)
    return api


if __name__ == "__main__":
    # ruleid: picket.python.flask-debug-enabled
    app.run(host="0.0.0.0", port=8080, debug=True)
    # ok: picket.python.flask-debug-enabled
    app.run(debug=os.environ.get("FLASK_DEBUG") == "1")
    # ok: picket.python.flask-debug-enabled
    app.run(debug=False)
    # ruleid: picket.python.flask-debug-enabled
    run_simple("0.0.0.0", 5000, app, use_debugger=True)


class Job:
    def run(self, debug=False):
        return debug


# ok: picket.python.flask-debug-enabled
Job().run(debug=True)
