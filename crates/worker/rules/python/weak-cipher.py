from Crypto.Cipher import AES, ARC4, DES, DES3
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def encrypt(key, iv, data):
    # ruleid: picket.python.weak-cipher
    c1 = DES.new(key, DES.MODE_CBC, iv)
    # ruleid: picket.python.weak-cipher
    c2 = DES3.new(key, DES3.MODE_CBC, iv)
    # ruleid: picket.python.weak-cipher
    c3 = ARC4.new(key)
    # ruleid: picket.python.weak-cipher
    c4 = Cipher(algorithms.TripleDES(key), modes.CBC(iv))
    # ruleid: picket.python.weak-cipher
    c5 = Cipher(algorithms.ARC4(key), mode=None)
    # ok: picket.python.weak-cipher
    c6 = AES.new(key, AES.MODE_GCM)
    # ok: picket.python.weak-cipher
    c7 = Cipher(algorithms.AES(key), modes.GCM(iv))
    return c1, c2, c3, c4, c5, c6, c7
