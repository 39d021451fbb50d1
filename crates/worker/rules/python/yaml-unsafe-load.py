import yaml
from yaml import CSafeLoader


def parse(text, stream, loader):
    # ruleid: picket.python.yaml-unsafe-load
    a = yaml.load(text)
    # ruleid: picket.python.yaml-unsafe-load
    b = yaml.load(text, Loader=yaml.Loader)
    # ruleid: picket.python.yaml-unsafe-load
    c = yaml.load(stream, Loader=yaml.UnsafeLoader)
    # ruleid: picket.python.yaml-unsafe-load
    d = yaml.unsafe_load(text)
    # ruleid: picket.python.yaml-unsafe-load
    e = list(yaml.load_all(stream))
    # ruleid: picket.python.yaml-unsafe-load
    f = yaml.load(text, yaml.Loader)
    # ok: picket.python.yaml-unsafe-load
    g = yaml.safe_load(text)
    # ok: picket.python.yaml-unsafe-load
    h = yaml.load(text, Loader=yaml.SafeLoader)
    # ok: picket.python.yaml-unsafe-load
    i = yaml.load(text, Loader=CSafeLoader)
    # ok: picket.python.yaml-unsafe-load
    j = yaml.load(text, yaml.SafeLoader)
    # ok: picket.python.yaml-unsafe-load
    k = yaml.load(text, Loader=loader)
    return a, b, c, d, e, f, g, h, i, j, k


def ruamel_config(fd):
    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    # ok: picket.python.yaml-unsafe-load
    return yaml.load(fd)
