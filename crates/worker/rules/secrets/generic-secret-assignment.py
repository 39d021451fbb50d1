# Fake values generated for Picket's rule tests; none of them is a real credential.
import os

# ruleid: picket.secrets.generic-secret-assignment
API_KEY = "aE5sMQBpA0K2HUGRXfhV2CpUlhNv7WPy"
# ruleid: picket.secrets.generic-secret-assignment
client_secret = 'EZeMNDA0_BKPWnly-zTCDbsksyGcGEmGzAM3lYkb'
# ruleid: picket.secrets.generic-secret-assignment
settings = {"webhook_token": "02fa9526fcee102cd72a1e4414adc9a9918c5163"}
# ok: picket.secrets.generic-secret-assignment
API_KEY = os.environ["API_KEY"]
# ok: picket.secrets.generic-secret-assignment
password = "changeme-changeme"
# ok: picket.secrets.generic-secret-assignment
api_token = "<your-api-token-here>"
# ok: picket.secrets.generic-secret-assignment
secret = "${APP_SECRET}"
# ok: picket.secrets.generic-secret-assignment
auth_token = "aaaaaaaaaaaaaaaaaaaaaaaa"
# ok: picket.secrets.generic-secret-assignment
session_token_id = "5f0c7d3e-2b1a-4c8e-9f6d-3a2b1c0d9e8f"
# ok: picket.secrets.generic-secret-assignment
access_token = "0b8e4c2a-91d7-4f3e-b6a5-7c1d2e3f4a5b"
# ok: picket.secrets.generic-secret-assignment
token_url = "https://auth.acme.io/oauth2/token"
# ok: picket.secrets.generic-secret-assignment
password_hasher = "django.contrib.auth.hashers.Argon2PasswordHasher"
# ok: picket.secrets.generic-secret-assignment
token_integrity = "sha512-Xm5X9nHuWcX4oUq9t4QKdq3m0H0LXg2gC2c3XlC3lKxVx6cJ3r1u0k8ZrA9Qe5c3fJrV1m3n2L5p8sT1qW2e3Q=="
