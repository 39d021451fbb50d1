import random
import secrets
import string
from random import choice

ALPHABET = string.ascii_letters + string.digits


def issue(user):
    # ruleid: picket.python.insecure-random
    reset_token = "".join(random.choice(ALPHABET) for _ in range(32))
    # ruleid: picket.python.insecure-random
    user.api_key = "%032x" % random.getrandbits(128)
    # ruleid: picket.python.insecure-random
    otp = random.randint(100000, 999999)
    # ruleid: picket.python.insecure-random
    password = "".join(choice(ALPHABET) for _ in range(12))
    # ok: picket.python.insecure-random
    session_token = secrets.token_urlsafe(32)
    # ok: picket.python.insecure-random
    delay = random.uniform(0.5, 1.5)
    # ok: picket.python.insecure-random
    csrf_token = "".join(random.SystemRandom().choice(ALPHABET) for _ in range(32))
    return reset_token, otp, password, session_token, delay, csrf_token


# ruleid: picket.python.insecure-random
def make_invite_code():
    return "".join(random.choices(ALPHABET, k=8))


# ok: picket.python.insecure-random
def pick_color():
    return random.choice(["red", "green"])
