import jwt
from jose import jwt as jose_jwt


def claims(token, key):
    # ruleid: picket.python.jwt-verification-disabled
    a = jwt.decode(token, options={"verify_signature": False})
    # ruleid: picket.python.jwt-verification-disabled
    b = jwt.decode(token, key, verify=False)
    # ruleid: picket.python.jwt-verification-disabled
    c = jwt.decode(token, key, algorithms=["HS256", "none"])
    opts = {"verify_signature": False, "verify_exp": True}
    # ruleid: picket.python.jwt-verification-disabled
    d = jwt.decode(token, key, options=opts)
    # ruleid: picket.python.jwt-verification-disabled
    e = jose_jwt.decode(token, key, options={"verify_signature": False})
    # ok: picket.python.jwt-verification-disabled
    f = jwt.decode(token, key, algorithms=["RS256"])
    # ok: picket.python.jwt-verification-disabled
    g = jwt.decode(token, key, algorithms=["HS256"], options={"verify_aud": False})
    # ok: picket.python.jwt-verification-disabled
    h = jwt.get_unverified_header(token)
    return a, b, c, d, e, f, g, h
