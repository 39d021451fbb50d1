const serialize = require("node-serialize");
const yaml = require("js-yaml");
const { deepDeserialize } = require("funcster");

function restore(req) {
  // ruleid: picket.javascript.unsafe-deserialization
  const session = serialize.unserialize(req.cookies.session);
  // ruleid: picket.javascript.unsafe-deserialization
  const doc = yaml.load(req.body, { schema: yaml.DEFAULT_FULL_SCHEMA });
  // ruleid: picket.javascript.unsafe-deserialization
  const obj = deepDeserialize(JSON.parse(req.body));
  // ok: picket.javascript.unsafe-deserialization
  const safe = yaml.load(req.body);
  // ok: picket.javascript.unsafe-deserialization
  const data = JSON.parse(req.body);
  // ok: picket.javascript.unsafe-deserialization
  const out = serialize.serialize(data);
  return { session, doc, obj, safe, out };
}
