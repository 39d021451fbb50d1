import hashlib

from Crypto.Hash import MD5
from cryptography.hazmat.primitives import hashes


def fingerprints(password: str, data: bytes):
    # ruleid: picket.python.weak-hash
    h1 = hashlib.md5(password.encode()).hexdigest()
    # ruleid: picket.python.weak-hash
    h2 = hashlib.sha1(data).hexdigest()
    # ruleid: picket.python.weak-hash
    h3 = hashlib.new("md5", data)
    # ruleid: picket.python.weak-hash
    h4 = MD5.new(data)
    # ruleid: picket.python.weak-hash
    h5 = hashes.Hash(hashes.SHA1())
    # ok: picket.python.weak-hash
    h6 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    # ok: picket.python.weak-hash
    h7 = hashlib.sha256(data).hexdigest()
    # ok: picket.python.weak-hash
    h8 = hashlib.new("sha256", data)
    # ok: picket.python.weak-hash
    h9 = hashes.Hash(hashes.SHA256())
    return h1, h2, h3, h4, h5, h6, h7, h8, h9
