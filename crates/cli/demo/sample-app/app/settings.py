DEBUG = False

# Fake credentials, committed by mistake: Picket's secrets rules flag them.
AWS_ACCESS_KEY_ID = "AKIAQX3NPL7RZ4TWYB2M"
GITHUB_TOKEN = "ghp_R8fLq2Zt6VwXc9NbH3mKj5PdY7sGa1Ue4Ti0"
DATABASE_URL = "postgres://app:Pq7vX2mZ9tLw@db.internal.example:5432/app"
