# Fake values generated for Picket's rule tests; none of them is a real credential.
import stripe

# ruleid: picket.secrets.stripe-live-key
stripe.api_key = "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"
# ruleid: picket.secrets.stripe-live-key
LEGACY_KEY = "sk_live_8l0nkmIVKjtDQ2m8AzAcpuue"
# ruleid: picket.secrets.stripe-live-key
RESTRICTED = "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"
# ok: picket.secrets.stripe-live-key
TEST_KEY = "sk_test_4eC39HqLyjWDarjtT1zdp7dc"
# ok: picket.secrets.stripe-live-key
PLACEHOLDER = "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx"
