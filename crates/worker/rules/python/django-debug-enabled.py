import os

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]

# ruleid: picket.python.django-debug-enabled
DEBUG = True

ALLOWED_HOSTS = ["app.example.com"]

INSTALLED_APPS = ["django.contrib.admin", "django.contrib.auth"]

if os.environ.get("LOCAL_DEV"):
    # ok: picket.python.django-debug-enabled
    DEBUG = True


class DevSettings:
    # ok: picket.python.django-debug-enabled
    DEBUG = True


def configure(settings):
    # ok: picket.python.django-debug-enabled
    DEBUG = True
    settings.DEBUG = DEBUG
