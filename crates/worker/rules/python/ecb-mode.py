from Crypto.Cipher import AES
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def seal(key, iv, nonce):
    # ruleid: picket.python.ecb-mode
    c1 = AES.new(key, AES.MODE_ECB)
    # ruleid: picket.python.ecb-mode
    c2 = Cipher(algorithms.AES(key), modes.ECB())
    # ok: picket.python.ecb-mode
    c3 = AES.new(key, AES.MODE_GCM, nonce=nonce)
    # ok: picket.python.ecb-mode
    c4 = Cipher(algorithms.AES(key), modes.CBC(iv))
    return c1, c2, c3, c4
