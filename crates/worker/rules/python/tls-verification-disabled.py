import ssl

import aiohttp
import httpx
import requests
import urllib3


def fetch(url):
    # ruleid: picket.python.tls-verification-disabled
    requests.get(url, verify=False, timeout=5)
    # ruleid: picket.python.tls-verification-disabled
    requests.post(url, json={}, verify=False)
    # ruleid: picket.python.tls-verification-disabled
    client = httpx.Client(verify=False)
    # ruleid: picket.python.tls-verification-disabled
    ctx = ssl._create_unverified_context()
    ctx2 = ssl.create_default_context()
    # ruleid: picket.python.tls-verification-disabled
    ctx2.check_hostname = False
    # ruleid: picket.python.tls-verification-disabled
    ctx2.verify_mode = ssl.CERT_NONE
    session = requests.Session()
    # ruleid: picket.python.tls-verification-disabled
    session.verify = False
    # ruleid: picket.python.tls-verification-disabled
    conn = aiohttp.TCPConnector(ssl=False)
    # ruleid: picket.python.tls-verification-disabled
    pool = urllib3.PoolManager(cert_reqs="CERT_NONE")
    # ok: picket.python.tls-verification-disabled
    requests.get(url, verify="/etc/ssl/private-ca.pem")
    # ok: picket.python.tls-verification-disabled
    requests.get(url, timeout=5)
    # ok: picket.python.tls-verification-disabled
    ctx3 = ssl.create_default_context(cafile="/etc/ssl/ca.pem")
    # ok: picket.python.tls-verification-disabled
    ctx3.verify_mode = ssl.CERT_REQUIRED
    return client, ctx, conn, pool
