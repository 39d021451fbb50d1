import json
import marshal
import pickle
import shelve

import dill
import jsonpickle
import pandas as pd
from pickle import loads


def restore(request, blob, path):
    # ruleid: picket.python.unsafe-deserialization
    obj = pickle.loads(request.body)
    with open(path, "rb") as f:
        # ruleid: picket.python.unsafe-deserialization
        state = pickle.load(f)
    # ruleid: picket.python.unsafe-deserialization
    other = loads(blob)
    # ruleid: picket.python.unsafe-deserialization
    code = marshal.loads(blob)
    # ruleid: picket.python.unsafe-deserialization
    fn = dill.loads(blob)
    # ruleid: picket.python.unsafe-deserialization
    thing = jsonpickle.decode(request.body)
    # ruleid: picket.python.unsafe-deserialization
    db = shelve.open(path)
    # ruleid: picket.python.unsafe-deserialization
    frame = pd.read_pickle(path)
    # ok: picket.python.unsafe-deserialization
    data = json.loads(request.body)
    # ok: picket.python.unsafe-deserialization
    out = pickle.dumps(data)
    return obj, state, other, code, fn, thing, db, frame, out
